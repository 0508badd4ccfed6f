"""The model service over HTTP: `app.create_app` builds it, `server.run_server` serves it,
`client.ApiClient` talks to it with the same methods as the in-process service."""
