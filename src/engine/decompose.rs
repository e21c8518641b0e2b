//! SLA decomposition: benchmark runs → a [`super::DecompTable`].
//! (Owned by the engine work; see the engine issue.)
