// Package events keeps an in-memory index of the events topic for the API:
// anomalies, forecast breaches and incidents folded from their opened,
// updated and closed events, plus a live feed for server-sent events.
//
// It sits at the read end of the pipeline: pipeline/subscribe.Events feeds
// an Index (a novacron.EventConsumer) from the events topic in a consumer
// group of the API process's own, and api/eventsapi serves it. Events are
// recognised by ID, so the duplicates an at-least-once bus delivers change
// nothing.
package events
