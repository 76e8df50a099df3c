//! Sluice: a live video packager and origin (the job of AWS Elemental MediaPackage) for
//! AWS Lambda, S3 and DynamoDB, or one local process.
//!
//! Data flow: encoder → [`http::ingest`] (authenticate, read) → [`ingest`] (store bytes,
//! index unpublished) → [`publish`] (number settled segments by the rules of
//! [`live::publish`]) → [`store`] ports → [`origin`] (manifests from the published index
//! via [`manifest`], segments from objects) → [`http::playback`] → player. Operators use
//! [`api`], the MediaPackage classic control API.
//!
//! Module map, top floor first; no module imports from a floor above it:
//! - composition: [`app`] (what each function builds at start: only its own services);
//! - HTTP: [`http`] (routes, edges, the error table), [`api`] — the only modules that use the web framework;
//!   [`events`], the edge for Lambda events that are not requests (staged uploads);
//! - flows: [`ingest`], [`origin`], [`publish`], plus [`access_log`], [`metrics`],
//!   [`alarms`], [`secrets`];
//! - pure rules and writers: [`live`], [`manifest`];
//! - ground: [`media`], [`model`], [`time`], [`catalog`] (typed documents), [`store`]
//!   (ports, adapters, [`store::keys`]), [`config`].

pub mod access_log;
pub mod alarms;
pub mod api;
pub mod app;
pub mod catalog;
pub mod config;
pub mod events;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod live;
pub mod manifest;
pub mod media;
pub mod metrics;
pub mod model;
pub mod origin;
pub mod publish;
pub mod secrets;
pub mod store;
pub mod time;

pub use app::App;
