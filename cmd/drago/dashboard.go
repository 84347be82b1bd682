package main

import (
	"net/http"

	"github.com/drago-wg/drago/webapp"
)

// dashboard returns the embedded web app's handler.
func dashboard() http.Handler { return webapp.Handler() }
