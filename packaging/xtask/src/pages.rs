//! The man page sections clap does not know: files, signals, exit status,
//! environment. Plain roff; hyphens in names and options are `\-`.

/// Appended to `outpost-agent.1`.
pub const AGENT_EXTRA: &str = r#".SH EXIT STATUS
.TP
\fB0\fR
Success (for \fBprobe\fR: every run of the check was \fIok\fR).
.TP
\fB1\fR
A runtime failure, or a probe that was not \fIok\fR.
.TP
\fB2\fR
A bad configuration or usage; the message names the file, line and column and the fix.
.SH SIGNALS
.TP
\fBSIGHUP\fR
Re\-read and validate the configuration file. An invalid file is logged and the running
configuration is kept. A valid one restarts the check schedule with the new checks; the
buffer and the connection to the collector are kept, so nothing is lost. Changes to
[agent], [buffer] and [collector] take effect after a restart.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop checks, flush the buffer, close the stream; at most 10 s.
.SH ENVIRONMENT
.TP
\fBOUTPOST_LOG\fR
Log filter, e.g. \fBinfo\fR (default) or \fBdebug\fR. Logs go to standard error.
.TP
\fBNOTIFY_SOCKET\fR, \fBWATCHDOG_USEC\fR
Set by systemd for Type=notify units: the agent reports readiness after its configuration
loaded and its buffer opened, and pings the watchdog from its main loop.
.SH FILES
.TP
\fI/etc/outpost/agent.toml\fR
The configuration (a conffile: upgrades keep local edits).
.TP
\fI/var/lib/outpost\-agent/buffer\fR
The sled buffer of results not yet acknowledged by a collector. Kept on upgrade and
removal; deleted on purge.
.TP
\fI/lib/systemd/system/outpost\-agent.service\fR
The hardened systemd unit.
.SH SEE ALSO
\fBoutpost\-collector\fR(1), \fBsystemd.exec\fR(5), \fBsystemd\-analyze\fR(1)
"#;

/// Appended to `outpost-collector.1`.
pub const COLLECTOR_EXTRA: &str = r#".SH EXIT STATUS
.TP
\fB0\fR
Success.
.TP
\fB1\fR
A runtime failure (e.g. an address already in use, an unreadable store).
.TP
\fB2\fR
A bad configuration or usage; the message names the file, line and column and the fix.
.SH SIGNALS
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop accepting, end agent streams, flush the store, exit.
.SH ENVIRONMENT
.TP
\fBOUTPOST_LOG\fR
Log filter, e.g. \fBinfo\fR (default) or \fBdebug\fR. Logs go to standard error.
.TP
\fBNOTIFY_SOCKET\fR, \fBWATCHDOG_USEC\fR
Set by systemd for Type=notify units: the collector reports readiness once its store is
open and its listeners serve, and pings the watchdog from its main loop.
.SH FILES
.TP
\fI/etc/outpost/collector.toml\fR
The configuration (a conffile: upgrades keep local edits).
.TP
\fI/var/lib/outpost\-collector/store\fR
The sled store of results. Kept on upgrade and removal; deleted on purge.
.TP
\fI/lib/systemd/system/outpost\-collector.service\fR
The hardened systemd unit.
.SH SEE ALSO
\fBoutpost\-agent\fR(1), \fBsystemd.exec\fR(5)
"#;
