"""Human approvals.

`quorum` says whether votes meet a gate's rules; `people` who a voter is now and who may not
approve; `gates` opens, closes and re-checks a run's requests for the controller; `votes`
casts a person's vote; `evidence` shows what a request is about; `foreign` keeps the inbox of
foreign systems' requests. The gate's model is `interlock.spec.approvals`; what an approval
is bound to is `interlock.engine.payload`.
"""
