//! Alerts that pipescope evaluates and sends itself: the notifiers ([`notify`]).

pub mod notify;
