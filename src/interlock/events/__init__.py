"""Events foreign systems push (signed, `POST /api/v1/events/{kind}`) and the watcher that
lists finished foreign runs when a push was lost."""
