//! DataRestor: a Kubernetes operator that protects PersistentVolumeClaim data with restic.
//!
//! The pure pieces live here, apart from any client: the API types, the annotation grammar, cron
//! schedules, restic command lines and the Job builder.

pub mod annotation;
pub mod api;
pub mod catalog;
pub mod context;
pub mod controller;
pub mod crdgen;
pub mod credentials;
pub mod drill;
pub mod health;
pub mod history;
pub mod job;
pub mod leader;
pub mod metrics;
pub mod naming;
pub mod operator;
pub mod repository;
pub mod restic;
pub mod restore;
pub mod schedule;
pub mod status;
pub mod webhook;
