package main

import "net/http"

// dashboard returns the embedded web app's handler.
func dashboard() http.Handler { return nil }
