//! The deterministic simulated host. (See the engine issue.)
