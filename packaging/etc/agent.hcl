# Drago host agent, read by drago-agent.service as
#   drago agent -config /etc/drago/agent.hcl
# The service runs as root with CAP_NET_ADMIN only. Flags and DRAGO_AGENT_*
# environment variables override these keys; every key is a flag of
# `drago agent -help` with '_' for '-' (README "Configuration").
#
# The package neither enables nor starts the agent: set the server and a join
# token below, then run
#   systemctl enable --now drago-agent
# Package upgrades never overwrite this file once you have edited it.

# The agent keeps its identity, private keys and last desired state in
# data_dir/agent, here /var/lib/drago/agent (0700, files 0600).
data_dir  = "/var/lib/drago"
log_level = "info"
# log_format = "json"  # one JSON object a line, for log shippers (default text)

agent {
  # The control plane, http(s)://host:port. Required.
  # server = "https://drago.example.com:8080"

  # The join token, needed for the first registration only: prefer a file
  # that only root can read (0600) to the token itself in this file.
  # join_file = "/etc/drago/join-token"
  # join      = "dgj_..."

  # PEM CA certificate of the server's certificate, if no system CA signs it.
  # ca_cert = "/etc/drago/ca.crt"

  # name              = "web1"            # default: the system host name
  # label             = ["site=par1"]
  # advertise_address = "203.0.113.7"     # default: the address the server sees

  backend            = "auto"  # kernel WireGuard when it works, else embedded wireguard-go
  drift_interval     = "30s"   # full reconcile that repairs hand-made changes
  heartbeat_interval = "1m"
  # Prometheus /metrics (peers' handshakes and traffic, reconciles), without
  # authentication; loopback only unless metrics_allow_remote = true.
  # metrics_addr       = "127.0.0.1:9109"
}
