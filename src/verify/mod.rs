//! Constraint verification, the objective half of RLMR: binary, all-or-nothing per
//! response. `rules` checks IFEval's programmatic instructions exactly as the reference
//! checker does.

pub mod rules;
