//! What the portal's live API is made of: the event stream (broker up/down, verdict changes,
//! MQTT connections, folded topics) derived from successive watcher states ([`events`]), and the
//! producers → topics → groups graph ([`flow`]).

pub mod events;
pub mod flow;
