//! The IFEval (and IFBench) aggregate, as `evaluation_lib.print_report` computes it:
//! prompt-level accuracy (all instructions of a prompt followed), instruction-level
//! accuracy, and accuracy per category and per instruction id, each strict and loose.
//! IFBench instructions that cannot be decided here are counted apart: left out of
//! the instruction-level numbers, and their prompts out of the prompt-level ones.

use std::collections::BTreeMap;
use std::fmt;

use super::ifbench::{IfbenchInstruction, IfbenchRow};
use super::{Instruction, RowVerdict};

/// `followed` out of `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accuracy {
    pub followed: usize,
    pub total: usize,
}

impl Accuracy {
    fn add(&mut self, followed: bool) {
        self.total += 1;
        self.followed += usize::from(followed);
    }

    /// The fraction followed (0 when there is nothing to count).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.followed as f64 / self.total as f64
        }
    }

    /// The fraction followed, in percent.
    pub fn percent(&self) -> f64 {
        100.0 * self.ratio()
    }
}

impl fmt::Display for Accuracy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:6.2}% ({}/{})",
            self.percent(),
            self.followed,
            self.total
        )
    }
}

/// Strict and loose accuracy of one group of verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrictLoose {
    pub strict: Accuracy,
    pub loose: Accuracy,
}

/// The report over many rows; add rows with [`IfevalReport::add`] (IFEval) or
/// [`IfevalReport::add_ifbench`] (IFBench).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IfevalReport {
    /// "IFEval" or "IFBench", the table's title.
    pub benchmark: &'static str,
    pub prompt_level: StrictLoose,
    pub instruction_level: StrictLoose,
    pub by_category: BTreeMap<&'static str, StrictLoose>,
    pub by_id: BTreeMap<&'static str, StrictLoose>,
    /// Instructions not decided here, per id (IFBench's undecidable ids).
    pub undecided: BTreeMap<&'static str, usize>,
    /// Prompts left out of the prompt level because one of their instructions is not
    /// decided.
    pub undecided_prompts: usize,
}

impl IfevalReport {
    pub fn new() -> IfevalReport {
        IfevalReport {
            benchmark: "IFEval",
            ..IfevalReport::default()
        }
    }

    /// An empty IFBench report.
    pub fn ifbench() -> IfevalReport {
        IfevalReport {
            benchmark: "IFBench",
            ..IfevalReport::default()
        }
    }

    /// Counts one prompt: its instructions and their verdicts (from [`super::evaluate`]).
    pub fn add(&mut self, instructions: &[Instruction], verdict: &RowVerdict) {
        let verdicts = verdict.strict.iter().zip(&verdict.loose);
        self.add_verdicts(
            instructions
                .iter()
                .zip(verdicts)
                .map(|(inst, (s, l))| (inst.category(), inst.id(), Some((s.pass, l.pass)))),
        );
    }

    /// Counts one IFBench prompt (from [`super::ifbench::evaluate`]).
    pub fn add_ifbench(&mut self, instructions: &[IfbenchInstruction], row: &IfbenchRow) {
        let verdicts = row.strict.iter().zip(&row.loose);
        self.add_verdicts(instructions.iter().zip(verdicts).map(|(inst, (s, l))| {
            let pair = s.as_ref().zip(l.as_ref()).map(|(s, l)| (s.pass, l.pass));
            (inst.category(), inst.id(), pair)
        }));
    }

    /// Counts one prompt from its (category, id, (strict, loose) or undecided) list.
    fn add_verdicts(
        &mut self,
        verdicts: impl Iterator<Item = (&'static str, &'static str, Option<(bool, bool)>)>,
    ) {
        let (mut all_strict, mut all_loose, mut decided) = (true, true, true);
        for (category, id, pair) in verdicts {
            let Some((strict, loose)) = pair else {
                *self.undecided.entry(id).or_default() += 1;
                decided = false;
                continue;
            };
            all_strict &= strict;
            all_loose &= loose;
            for group in [
                &mut self.instruction_level,
                self.by_category.entry(category).or_default(),
                self.by_id.entry(id).or_default(),
            ] {
                group.strict.add(strict);
                group.loose.add(loose);
            }
        }
        if decided {
            self.prompt_level.strict.add(all_strict);
            self.prompt_level.loose.add(all_loose);
        } else {
            self.undecided_prompts += 1;
        }
    }
}

impl fmt::Display for IfevalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WIDTH: usize = 46;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, group: &StrictLoose| {
            writeln!(
                f,
                "{name:<WIDTH$} {:>22} {:>22}",
                group.strict.to_string(),
                group.loose.to_string()
            )
        };
        writeln!(
            f,
            "{:<WIDTH$} {:>22} {:>22}",
            self.benchmark, "strict", "loose"
        )?;
        row(f, "prompt-level", &self.prompt_level)?;
        row(f, "instruction-level", &self.instruction_level)?;
        writeln!(f)?;
        writeln!(f, "{:<WIDTH$} {:>22} {:>22}", "category", "strict", "loose")?;
        for (name, group) in &self.by_category {
            row(f, name, group)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<WIDTH$} {:>22} {:>22}",
            "instruction", "strict", "loose"
        )?;
        for (name, group) in &self.by_id {
            row(f, name, group)?;
        }
        if !self.undecided.is_empty() {
            writeln!(f)?;
            let total: usize = self.undecided.values().sum();
            let ids: Vec<String> = self
                .undecided
                .iter()
                .map(|(id, n)| format!("{id} ({n})"))
                .collect();
            writeln!(
                f,
                "not decided here: {total} instructions ({}); {} prompts left out of the prompt level",
                ids.join(", "),
                self.undecided_prompts
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Instruction, evaluate};
    use super::*;
    use serde_json::Map;

    #[test]
    fn aggregates_like_print_report() {
        let build = |id| Instruction::new(id, &Map::new()).unwrap_or_else(|e| panic!("{e}"));
        let prompt_a = [
            build("punctuation:no_comma"),
            build("detectable_format:title"),
        ];
        let prompt_b = [build("punctuation:no_comma")];
        let mut report = IfevalReport::new();
        report.add(&prompt_a, &evaluate(&prompt_a, "<<T>>\nno commas"));
        report.add(&prompt_b, &evaluate(&prompt_b, "a, b\nc"));
        assert_eq!(
            report.prompt_level.strict,
            Accuracy {
                followed: 1,
                total: 2
            }
        );
        assert_eq!(
            report.prompt_level.loose,
            Accuracy {
                followed: 2,
                total: 2
            }
        );
        assert_eq!(
            report.instruction_level.strict,
            Accuracy {
                followed: 2,
                total: 3
            }
        );
        assert_eq!(
            report.by_category["punctuation"].strict,
            Accuracy {
                followed: 1,
                total: 2
            }
        );
        assert_eq!(
            report.by_id["detectable_format:title"].loose,
            Accuracy {
                followed: 1,
                total: 1
            }
        );
        let table = report.to_string();
        assert!(table.contains("prompt-level"));
        assert!(table.contains(" 50.00% (1/2)"), "{table}");
    }
}
