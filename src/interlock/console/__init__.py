"""The web console's server side: where its built files are (`files.py`), the headers that
guard them (`headers.py`) and the server-sent event streams it listens to (`sse.py`).

The front end's source is `console/` at the repository root; `npm --prefix console ci &&
npm --prefix console run build` writes its build into `static/` here (docs/console.md).
"""
