// Package alerts delivers alerts. The outbox keeps them in the store until
// JetStream acknowledged them (Outbox, Publisher); each sink then consumes
// the alert stream with a durable consumer of its own (RunSink), groups the
// alerts its route takes into incidents, and sends each incident's
// notification through a pipeline of stages: silence, group, notify (with
// retries by JetStream redelivery) and record (incident state, acks, dead
// letters). Integrations (pagerduty, slack, webhook, logsink) implement
// Notifier in subpackages.
package alerts
