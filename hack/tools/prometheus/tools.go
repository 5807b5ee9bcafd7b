//go:build tools

// Package tools pins Prometheus 3 (module v0.316.0) for hack/build-tools.sh.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
