//! Simulation scenarios (see the engine issue). Written next.
