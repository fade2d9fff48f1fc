"""Concurrency limits (`docs/concurrency.md`): per flow (`concurrency:` in the flow file), per
namespace (`concurrency: {runs: N}` in a policy file) and per system (`concurrency:` in the
systems file), enforced in the store so that any number of workers and API replicas never
exceed them. `scopes` says which limits hold (pure); `slots` admits, queues and wakes."""
