// Package pipeline holds the stages between the collectors and storage:
// publish (collector → bus), ingest (bus → storage) and the subscribers
// that feed inventory and events to the other roles.
package pipeline
