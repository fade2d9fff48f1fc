"""What people do with Interlock, for the API and the CLI: register flows, start, inspect,
cancel and retry runs, import foreign systems; and the assembly of the running parts
(dispatcher, periodic jobs, worker). The only place that opens transactions for them."""
