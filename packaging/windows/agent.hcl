# Drago host agent on Windows, read by the service drago-agent as
#   drago.exe agent -config "C:\ProgramData\Drago\agent.hcl"
# The installer puts this file here once and never overwrites or removes it.
# Flags and DRAGO_AGENT_* environment variables override these keys; every key
# is a flag of `drago agent -help` with '_' for '-'.
#
# Set the server and a join token below, then start the service:
#   sc.exe start drago-agent
# (it also starts at every boot; without a server it stops at once and says
# why in the Application event log).

# The agent keeps its identity, private keys and last desired state in
# data_dir\agent.
data_dir  = "C:\\ProgramData\\Drago"
log_level = "info"

agent {
  # The control plane, http(s)://host:port. Required.
  # server = "https://drago.example.com:8080"

  # The join token, needed for the first registration only.
  # join_file = "C:\\ProgramData\\Drago\\join-token"
  # join      = "dgj_..."

  # PEM CA certificate of the server's certificate, if no system CA signs it.
  # ca_cert = "C:\\ProgramData\\Drago\\ca.crt"

  # name              = "laptop1"         # default: the computer name
  # label             = ["site=par1"]
  # advertise_address = "203.0.113.7"     # default: the address the server sees

  backend            = "auto"
  drift_interval     = "30s"
  heartbeat_interval = "15s"
}
