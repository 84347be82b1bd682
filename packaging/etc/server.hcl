# Drago control plane, read by drago-server.service as
#   drago server -config /etc/drago/server.hcl
# The service runs as the system user drago, so this file is root:drago 0640.
# Flags and DRAGO_SERVER_* environment variables override these keys; every key
# is a flag of `drago server -help` with '_' for '-' (README "Configuration").
#
# Package upgrades never overwrite this file once you have edited it.
# Start the server with:  systemctl enable --now drago-server

# The server's own folder: state database and root token (0700, user drago).
# It is /var/lib/drago/server, not /var/lib/drago, so that the agent (root,
# /var/lib/drago/agent) and the server can run on one machine.
data_dir  = "/var/lib/drago/server"
log_level = "info"
# log_format = "json"  # one JSON object a line, for log shippers (default text)

server {
  # Loopback until you choose to expose the server; then also enable TLS.
  addr                  = "127.0.0.1:8080"
  # A host without a status report for this long is "down".
  heartbeat_grace       = "45s"
  # The agents' key rotation period (0: never); older keys are flagged.
  key_rotation_interval = "24h"
  # Prometheus: GET /api/v1/metrics answers a token with a metrics policy
  # (drago token create -name prometheus -policy metrics:read). metrics_addr
  # also serves /metrics WITHOUT authentication: a private address only.
  # metrics_addr        = "10.0.0.5:9108"

  # Several servers share one etcd cluster instead of the bbolt file in
  # data_dir (docs/etcd.md); data_dir still holds the root token.
  # store = "etcd"
  # etcd {
  #   endpoints = ["https://e1:2379", "https://e2:2379", "https://e3:2379"]
  #   ca_cert   = "/etc/drago/tls/etcd-ca.crt"
  #   cert      = "/etc/drago/tls/etcd-client.crt"
  #   key       = "/etc/drago/tls/etcd-client.key"
  #   prefix    = "/drago/"
  # }

  # tls {
  #   cert_file = "/etc/drago/tls/server.crt"
  #   key_file  = "/etc/drago/tls/server.key"  # root:drago 0640
  # }
}
