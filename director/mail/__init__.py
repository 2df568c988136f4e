"""Email alerts: which events mail (keepalived's smtp_alert precedence), what a mail says, and
the outbox policy (bounded queue, retries with backoff), all sans-IO; `smtp` is the one I/O
adapter, a bounded SMTP exchange. The daemon (`director.daemon.mailer`) runs it off its loop."""
