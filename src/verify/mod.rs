//! Constraint verification, the objective half of RLMR: binary, all-or-nothing per
//! response.
//!
//! Three ways to check a constraint, one verdict:
//! * [`rules`]: IFEval's 25 programmatic instructions and IFBench's 58, exactly as their
//!   reference checkers (strict, or the loose variant); an IFBench instruction that cannot
//!   be decided here ([`rules::ifbench::UNDECIDABLE`]) goes to the judge;
//! * a judge ([`judge::Judge`]): an LLM asked whether the response meets a constraint
//!   phrased as text, read as `P(yes) / (P(yes) + P(no))` and thresholded; hosted on
//!   Burn ([`judge::BurnJudge`], any backend) or behind an OpenAI-compatible endpoint
//!   ([`remote::RemoteJudge`]);
//! * hybrid (the default when a judge is configured): the rules check what they can,
//!   the judge the rest; a response passes when every check passes.
//!
//! # Library use (GRPO calls this every step)
//! ```no_run
//! use rmtk::verify::{ConstraintSet, Verifier, VerifyItem};
//! # fn main() -> anyhow::Result<()> {
//! // Built once per prompt (ids and kwargs as in IFEval's input_data.jsonl)...
//! let prompt = "Write a haiku about rain. Do not use any commas.";
//! let kwargs = vec![serde_json::Map::new()];
//! let constraints = ConstraintSet::ifeval(Some(prompt), &["punctuation:no_comma"], &kwargs)?;
//! // ... and shared by the n responses sampled for it.
//! let responses = ["Rain taps the window\nsoft and slow", "Rain, soft rain"];
//! let items: Vec<VerifyItem> = responses
//!     .iter()
//!     .map(|r| VerifyItem { prompt, response: r, constraints: &constraints })
//!     .collect();
//! let verifier = Verifier::rules(false);
//! let verdicts = verifier.verify(&items)?;
//! assert!(verdicts[0].pass && !verdicts[1].pass);
//! # Ok(()) }
//! ```
//! With a judge, build the verifier from [`VerifierArgs`] ([`build_verifier`], generic
//! over the Burn backend, the model loaded once) or from a [`judge::Judge`] of your own
//! ([`Verifier::new`]). A remote judge that stays unreachable through its retries
//! fails the call with [`VerifyError::is_endpoint_down`] true, so a trainer can stop
//! cleanly with its last checkpoint intact.
//!
//! # The command
//! `rmtk verify --input ROWS --output OUT` verifies rows (see [`input`] for the three
//! forms constraints take); `rmtk verify --ifeval INPUT_DATA.jsonl --responses
//! RESPONSES.jsonl` is IFEval's own evaluation ([`ifeval`]); `--ifbench` IFBench's
//! ([`ifbench`]). [`http`] holds what the remote judge and GRPO's reward endpoint share
//! (retries, cache, concurrency, the API key).

pub mod http;
pub mod ifbench;
pub mod ifeval;
pub mod input;
pub mod judge;
mod output;
pub mod remote;
pub mod reward_url;
pub mod rubric;
pub mod rules;

use crate::kernels::FusedOps;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use crate::data::{self, Row};
use crate::device::{DeviceSpec, Job, run_on};
use crate::models::ModelDir;
use judge::{BurnJudge, BurnJudgeOptions, Judge, JudgeError, JudgeQuery, PROMPT_CONSTRAINTS};
use remote::{RemoteJudge, RemoteOptions, Secret};
use rules::ifbench::{IFBENCH_IDS, IfbenchInstruction};
use rules::{INSTRUCTION_IDS, Instruction, RuleError};

// ---------------------------------------------------------------------------------
// The library API
// ---------------------------------------------------------------------------------

/// How constraints are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// IFEval instructions by the rules; anything else is an error.
    Rules,
    /// Everything by the judge, IFEval instructions phrased as text
    /// ([`Instruction::describe`]).
    Judge,
    /// IFEval instructions by the rules, free-text constraints and constraints stated
    /// only in the prompt by the judge.
    Hybrid,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Rules => "rules",
            Mode::Judge => "judge",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// One constraint on a response.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// An IFEval instruction, checkable by the rules.
    Rule(Instruction),
    /// An IFBench instruction: checkable by the rules unless it is undecidable here
    /// ([`IfbenchInstruction::undecidable`]), then by the judge.
    Ifbench(IfbenchInstruction),
    /// A constraint in words, for the judge.
    Text(String),
}

impl Constraint {
    /// How the constraint is named in verdicts: the IFEval / IFBench id, or the text.
    pub fn label(&self) -> Cow<'_, str> {
        match self {
            Constraint::Rule(inst) => Cow::Borrowed(inst.id()),
            Constraint::Ifbench(inst) => Cow::Borrowed(inst.id()),
            Constraint::Text(text) => Cow::Borrowed(text),
        }
    }

    /// The instruction id of a rule (IFEval or IFBench), `None` for free text.
    pub fn id(&self) -> Option<&'static str> {
        match self {
            Constraint::Rule(inst) => Some(inst.id()),
            Constraint::Ifbench(inst) => Some(inst.id()),
            Constraint::Text(_) => None,
        }
    }

    /// The constraint as the judge reads it.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Constraint::Rule(inst) => Cow::Owned(inst.describe()),
            Constraint::Ifbench(inst) => Cow::Owned(inst.describe()),
            Constraint::Text(text) => Cow::Borrowed(text),
        }
    }

    /// Whether the rules decide this constraint (else the judge must).
    pub fn by_rules(&self) -> bool {
        match self {
            Constraint::Rule(_) => true,
            Constraint::Ifbench(inst) => inst.undecidable().is_none(),
            Constraint::Text(_) => false,
        }
    }

    /// The rules' strict or loose verdict (`None` when the rules do not decide it).
    fn check(&self, response: &str, loose: bool) -> Option<rules::Check> {
        match self {
            Constraint::Rule(inst) if loose => Some(rules::check_loose(inst, response)),
            Constraint::Rule(inst) => Some(inst.check(response)),
            Constraint::Ifbench(inst) if loose => inst.check_loose(response),
            Constraint::Ifbench(inst) => inst.check(response),
            Constraint::Text(_) => None,
        }
    }
}

/// Why a set of constraints could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("instruction {index} of the list: {source}")]
    Rule {
        index: usize,
        #[source]
        source: RuleError,
    },
    #[error("{ids} instruction ids but {kwargs} kwargs objects; they go in pairs")]
    Lengths { ids: usize, kwargs: usize },
    #[error("constraint {index} of the list is empty")]
    EmptyText { index: usize },
}

/// An unknown id names both benchmarks' ids (rows may mix them).
fn either_benchmark(error: RuleError) -> RuleError {
    match error {
        RuleError::UnknownInstruction { id, .. } => RuleError::UnknownInstruction {
            id,
            benchmark: "IFEval and IFBench",
            accepted: INSTRUCTION_IDS
                .iter()
                .chain(&IFBENCH_IDS)
                .copied()
                .collect(),
        },
        other => other,
    }
}

/// The constraints of one prompt: IFEval / IFBench instructions and free-text
/// constraints.
/// Empty means the judge reads the constraints from the prompt itself.
///
/// Build it once per prompt and share it among the prompt's responses: building
/// validates the arguments and prepares each rule.
#[derive(Debug, Clone, Default)]
pub struct ConstraintSet {
    constraints: Vec<Constraint>,
    rubric: rubric::Rubric,
}

impl ConstraintSet {
    /// No constraints: the judge reads them from the prompt.
    pub fn from_prompt() -> ConstraintSet {
        ConstraintSet::default()
    }

    /// Rule instructions: ids and their kwargs, as in IFEval's `input_data.jsonl` or
    /// IFBench's `IFBench_test.jsonl` (`null` kwargs values count as absent); IFEval's
    /// 25 ids and IFBench's 58 may be mixed. With `prompt`, it stands in for a missing
    /// `prompt_to_repeat` of `combination:repeat_prompt`.
    pub fn ifeval<S: AsRef<str>>(
        prompt: Option<&str>,
        ids: &[S],
        kwargs: &[Map<String, Value>],
    ) -> Result<ConstraintSet, ConstraintError> {
        if ids.len() != kwargs.len() {
            return Err(ConstraintError::Lengths {
                ids: ids.len(),
                kwargs: kwargs.len(),
            });
        }
        let constraints = ids
            .iter()
            .zip(kwargs)
            .enumerate()
            .map(|(index, (id, kwargs))| {
                let id = id.as_ref();
                let built = if IFBENCH_IDS.contains(&id) {
                    IfbenchInstruction::new(id, kwargs).map(Constraint::Ifbench)
                } else {
                    match prompt {
                        Some(p) => Instruction::with_prompt(id, kwargs, p),
                        None => Instruction::new(id, kwargs),
                    }
                    .map(Constraint::Rule)
                };
                built.map_err(|source| ConstraintError::Rule {
                    index,
                    source: either_benchmark(source),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ConstraintSet {
            constraints,
            rubric: rubric::Rubric::default(),
        })
    }

    /// Free-text constraints, for the judge.
    pub fn texts<S: AsRef<str>>(texts: &[S]) -> Result<ConstraintSet, ConstraintError> {
        let mut set = ConstraintSet::default();
        for text in texts {
            set.push_text(text.as_ref())?;
        }
        Ok(set)
    }

    pub fn push_rule(&mut self, instruction: Instruction) {
        self.constraints.push(Constraint::Rule(instruction));
    }

    pub fn push_text(&mut self, text: &str) -> Result<(), ConstraintError> {
        if text.trim().is_empty() {
            return Err(ConstraintError::EmptyText {
                index: self.constraints.len(),
            });
        }
        self.constraints
            .push(Constraint::Text(text.trim().to_owned()));
        Ok(())
    }

    /// The prompt's rubric (its hard items gate, its soft items score).
    pub fn set_rubric(&mut self, rubric: rubric::Rubric) {
        self.rubric = rubric;
    }

    pub fn rubric(&self) -> &rubric::Rubric {
        &self.rubric
    }

    /// No constraint and no rubric: the judge reads the constraints from the prompt.
    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty() && self.rubric.is_empty()
    }

    /// The listed constraints (the rubric's items not counted).
    pub fn len(&self) -> usize {
        self.constraints.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Constraint> {
        self.constraints.iter()
    }

    pub fn as_slice(&self) -> &[Constraint] {
        &self.constraints
    }

    /// Whether verifying needs a judge: nothing listed (the judge reads the prompt), a
    /// free-text constraint, an instruction the rules cannot decide here, or a rubric
    /// item for the judge.
    pub fn needs_judge(&self) -> bool {
        self.is_empty()
            || !self.constraints.iter().all(Constraint::by_rules)
            || self.rubric.needs_judge()
    }
}

/// One response to verify, with the prompt it answers and that prompt's constraints.
#[derive(Debug, Clone, Copy)]
pub struct VerifyItem<'a> {
    pub prompt: &'a str,
    pub response: &'a str,
    pub constraints: &'a ConstraintSet,
}

/// Who decided a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    Rules,
    Judge,
    /// An endpoint of your own (a rubric item's URL check).
    Url,
}

impl Checker {
    pub fn as_str(self) -> &'static str {
        match self {
            Checker::Rules => "rules",
            Checker::Judge => "judge",
            Checker::Url => "url",
        }
    }
}

/// The verdict on one constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintVerdict {
    /// The IFEval id, the free text, or [`PROMPT_LABEL`].
    pub constraint: String,
    pub checker: Checker,
    pub pass: bool,
    /// On failure, a short reason, e.g.
    /// `length_constraints:number_words: 212 words, needs at least 300`.
    pub reason: Option<String>,
    /// The judge's `P(yes) / (P(yes) + P(no))` (judge verdicts only).
    pub probability: Option<f32>,
    /// The judge's rationale (with a rationale-writing judge).
    pub rationale: Option<String>,
    /// The judge's note (its input was shortened, or it gave no yes/no answer).
    pub note: Option<String>,
}

/// The verdict on one response: `pass` when every constraint is met and every hard
/// rubric item passes.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    pub checks: Vec<ConstraintVerdict>,
    /// One verdict per rubric item, in order (empty without a rubric).
    pub rubric: Vec<rubric::ItemVerdict>,
    /// The soft items' weighted score in [0, 1] ([`rubric::rubric_score`]).
    pub rubric_score: Option<f64>,
}

impl Verdict {
    /// The failure reasons: the constraints', then the hard rubric items', in order.
    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .filter_map(|c| c.reason.as_deref())
            .chain(
                self.rubric
                    .iter()
                    .filter(|i| i.hard)
                    .filter_map(|i| i.verdict.reason.as_deref()),
            )
    }
}

/// The label of the one constraint checked when a prompt names none.
pub const PROMPT_LABEL: &str = "(the constraints stated in the prompt)";

/// Why a batch could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An item needs a judge and the verifier has none.
    #[error(
        "item {item}: {what} needs a judge, and this verifier has none (configure --judge-model or --judge-url)"
    )]
    NeedsJudge { item: usize, what: &'static str },
    #[error(transparent)]
    Judge(#[from] JudgeError),
    /// A rubric item's endpoint failed.
    #[error("rubric check: {0}")]
    Url(#[from] reward_url::RewardError),
    /// A rubric item's endpoint answered a score outside [0, 1].
    #[error(
        "rubric check {url}: the score of {item} is {score}, outside [0, 1] (a rubric item's score is a probability-like number)"
    )]
    ScoreRange {
        url: String,
        item: String,
        score: f64,
    },
}

impl VerifyError {
    /// True when a remote judge's or a rubric item's endpoint stayed unreachable
    /// through its retries.
    pub fn is_endpoint_down(&self) -> bool {
        match self {
            VerifyError::Judge(e) => e.is_endpoint_down(),
            VerifyError::Url(e) => e.is_endpoint_down(),
            _ => false,
        }
    }
}

/// How a [`Verifier`] decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifierOptions {
    pub mode: Mode,
    /// Rules: IFEval's loose variant instead of strict.
    pub loose: bool,
    /// Judge: pass when `P(yes) / (P(yes) + P(no))` is at least this.
    pub threshold: f32,
}

impl Default for VerifierOptions {
    fn default() -> VerifierOptions {
        VerifierOptions {
            mode: Mode::Rules,
            loose: false,
            threshold: 0.5,
        }
    }
}

/// The verifier: rules, a judge, or both. Build it once; call [`Verifier::verify`]
/// as often as needed.
pub struct Verifier {
    options: VerifierOptions,
    judge: Option<Box<dyn Judge + Send>>,
    /// How rubric items' endpoints are called, and one client per URL (made on first
    /// use, kept for its cache and counts).
    reward: reward_url::RewardArgs,
    endpoints: std::sync::Mutex<BTreeMap<String, std::sync::Arc<reward_url::RemoteReward>>>,
}

/// What one constraint of one item becomes.
enum Slot {
    Rule(usize),
    Judge(usize, Cow<'static, str>),
}

/// What one rubric item of one response becomes.
enum ItemSlot {
    /// Decided by the rules.
    Rule,
    /// The judge's answer to query `q`.
    Judge(usize),
    /// The endpoint's score of URL query `q`.
    Url(usize),
}

/// One call to a rubric item's endpoint.
struct UrlQuery<'a> {
    url: &'a str,
    prompt: &'a str,
    response: &'a str,
    criterion: &'a str,
    name: String,
}

impl Verifier {
    /// The rules alone (strict, or IFEval's loose variant).
    pub fn rules(loose: bool) -> Verifier {
        Verifier {
            options: VerifierOptions {
                loose,
                ..VerifierOptions::default()
            },
            judge: None,
            reward: reward_url::RewardArgs::default(),
            endpoints: Default::default(),
        }
    }

    /// Calls rubric items' endpoints with these options (default: the command line's
    /// defaults without a cache).
    pub fn with_reward_args(mut self, reward: reward_url::RewardArgs) -> Verifier {
        self.reward = reward;
        self.endpoints = Default::default();
        self
    }

    /// The requests made to rubric endpoints so far, one line per URL.
    pub fn endpoint_stats(&self) -> Vec<String> {
        let endpoints = self.endpoints.lock().expect("not poisoned");
        endpoints
            .iter()
            .map(|(url, e)| format!("{url}: {}", e.describe_stats()))
            .collect()
    }

    fn endpoint(&self, url: &str) -> Result<std::sync::Arc<reward_url::RemoteReward>, VerifyError> {
        let mut endpoints = self.endpoints.lock().expect("not poisoned");
        if let Some(e) = endpoints.get(url) {
            return Ok(e.clone());
        }
        let e = std::sync::Arc::new(reward_url::RemoteReward::new(
            self.reward.data_url_options(url),
        )?);
        endpoints.insert(url.to_owned(), e.clone());
        Ok(e)
    }

    /// A verifier with `options`; the judge and hybrid modes need a `judge`.
    pub fn new(
        options: VerifierOptions,
        judge: Option<Box<dyn Judge + Send>>,
    ) -> Result<Verifier, JudgeError> {
        if !(0.0..=1.0).contains(&options.threshold) {
            return Err(JudgeError::Config(format!(
                "the judge threshold must be within [0, 1], not {}",
                options.threshold
            )));
        }
        if options.mode != Mode::Rules && judge.is_none() {
            return Err(JudgeError::Config(format!(
                "mode {} needs a judge (--judge-model, with --judge-url for a remote one)",
                options.mode.as_str()
            )));
        }
        Ok(Verifier {
            options,
            judge,
            reward: reward_url::RewardArgs::default(),
            endpoints: Default::default(),
        })
    }

    pub fn options(&self) -> &VerifierOptions {
        &self.options
    }

    /// The judge, if any.
    pub fn judge(&self) -> Option<&(dyn Judge + Send)> {
        self.judge.as_deref()
    }

    /// Verdicts for `items`, in order. Rules run in parallel over items; every judge
    /// query of the call goes to the judge at once (batched, or concurrent for a
    /// remote judge), and every rubric URL check to its endpoint (batched, concurrent).
    pub fn verify(&self, items: &[VerifyItem<'_>]) -> Result<Vec<Verdict>, VerifyError> {
        self.verify_named(items, &|i| format!("item {i}"))
    }

    /// [`Verifier::verify`], with errors naming item `i` as `name(i)` (a row of a file,
    /// a completion of a prompt).
    pub fn verify_named(
        &self,
        items: &[VerifyItem<'_>],
        name: &dyn Fn(usize) -> String,
    ) -> Result<Vec<Verdict>, VerifyError> {
        let use_rules = self.options.mode != Mode::Judge;
        let mut queries: Vec<JudgeQuery<'_>> = Vec::new();
        let mut url_queries: Vec<UrlQuery<'_>> = Vec::new();
        let mut plans: Vec<Vec<Slot>> = Vec::with_capacity(items.len());
        let mut item_plans: Vec<Vec<ItemSlot>> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let needs_judge = |what| -> Result<(), VerifyError> {
                match self.judge {
                    Some(_) => Ok(()),
                    None => Err(VerifyError::NeedsJudge { item: index, what }),
                }
            };
            let mut plan = Vec::with_capacity(item.constraints.len().max(1));
            if item.constraints.is_empty() {
                needs_judge("a prompt without listed constraints")?;
                plan.push(Slot::Judge(queries.len(), Cow::Borrowed(PROMPT_LABEL)));
                queries.push(JudgeQuery {
                    instruction: item.prompt,
                    constraint: Cow::Borrowed(PROMPT_CONSTRAINTS),
                    response: item.response,
                });
            }
            for (k, constraint) in item.constraints.iter().enumerate() {
                match constraint {
                    c if use_rules && c.by_rules() => plan.push(Slot::Rule(k)),
                    _ => {
                        needs_judge(match constraint {
                            Constraint::Text(_) => "a free-text constraint",
                            Constraint::Ifbench(_) if use_rules => {
                                "an IFBench instruction the rules cannot decide here (NLTK data missing, or the reference draws an argument at random)"
                            }
                            _ => "judge mode",
                        })?;
                        plan.push(Slot::Judge(
                            queries.len(),
                            Cow::Owned(constraint.label().into_owned()),
                        ));
                        queries.push(JudgeQuery {
                            instruction: item.prompt,
                            constraint: constraint.as_text(),
                            response: item.response,
                        });
                    }
                }
            }
            plans.push(plan);
            let rubric_items = item.constraints.rubric().items();
            let mut item_plan = Vec::with_capacity(rubric_items.len());
            for (k, ri) in rubric_items.iter().enumerate() {
                let question = match &ri.check {
                    rubric::ItemCheck::Rule(c) if use_rules && c.by_rules() => {
                        item_plan.push(ItemSlot::Rule);
                        continue;
                    }
                    rubric::ItemCheck::Url(url) => {
                        item_plan.push(ItemSlot::Url(url_queries.len()));
                        url_queries.push(UrlQuery {
                            url,
                            prompt: item.prompt,
                            response: item.response,
                            criterion: &ri.criterion,
                            name: format!("{}, rubric item {k}", name(index)),
                        });
                        continue;
                    }
                    rubric::ItemCheck::Rule(c) => c.as_text(),
                    rubric::ItemCheck::Judge(q) => Cow::Borrowed(q.as_str()),
                };
                needs_judge("a rubric item checked by the judge")?;
                item_plan.push(ItemSlot::Judge(queries.len()));
                queries.push(JudgeQuery {
                    instruction: item.prompt,
                    constraint: question,
                    response: item.response,
                });
            }
            item_plans.push(item_plan);
        }
        let loose = self.options.loose;
        // Per item: the rules' checks of its constraints, then of its rubric items.
        type Checks = Vec<Option<rules::Check>>;
        let rule_checks: Vec<(Checks, Checks)> = items
            .par_iter()
            .zip(&plans)
            .zip(&item_plans)
            .map(|((item, plan), item_plan)| {
                let constraints = item.constraints.as_slice();
                let listed = plan
                    .iter()
                    .map(|slot| match slot {
                        Slot::Rule(k) => constraints[*k].check(item.response, loose),
                        Slot::Judge(..) => None,
                    })
                    .collect();
                let rubric_items = item.constraints.rubric().items();
                let rubric = item_plan
                    .iter()
                    .zip(rubric_items)
                    .map(|(slot, ri)| match (slot, &ri.check) {
                        (ItemSlot::Rule, rubric::ItemCheck::Rule(c)) => {
                            c.check(item.response, loose)
                        }
                        _ => None,
                    })
                    .collect();
                (listed, rubric)
            })
            .collect();
        // Endpoints first: they are cheap to call again, a local judge's work is not.
        let url_scores = self.score_urls(&url_queries)?;
        let answers = match (&self.judge, queries.is_empty()) {
            (Some(judge), false) => judge.judge(&queries)?,
            _ => Vec::new(),
        };
        let threshold = self.options.threshold;
        let verdicts = plans
            .into_iter()
            .zip(item_plans)
            .zip(rule_checks)
            .zip(items)
            .map(|(((plan, item_plan), (checks, rubric_checks)), item)| {
                let constraints = item.constraints.as_slice();
                let checks: Vec<ConstraintVerdict> = plan
                    .into_iter()
                    .zip(checks)
                    .map(|(slot, check)| match (slot, check) {
                        (Slot::Rule(k), Some(check)) => {
                            rule_verdict(constraints[k].label().into_owned(), check)
                        }
                        (Slot::Judge(q, label), _) => judge_verdict(&label, &answers[q], threshold),
                        (Slot::Rule(k), None) => unreachable!("rule slot {k} has a check"),
                    })
                    .collect();
                let rubric: Vec<rubric::ItemVerdict> = item_plan
                    .into_iter()
                    .zip(rubric_checks)
                    .zip(item.constraints.rubric().items())
                    .map(|((slot, check), ri)| {
                        let (verdict, score) = match (slot, check) {
                            (ItemSlot::Rule, Some(check)) => {
                                let score = f64::from(u8::from(check.pass));
                                (rule_verdict(ri.criterion.clone(), check), score)
                            }
                            (ItemSlot::Judge(q), _) => {
                                let answer = &answers[q];
                                let score = answer.probability.map_or(0.0, f64::from);
                                (judge_verdict(&ri.criterion, answer, threshold), score)
                            }
                            (ItemSlot::Url(q), _) => {
                                let score = url_scores[q];
                                (url_verdict(&ri.criterion, score, threshold), score)
                            }
                            (ItemSlot::Rule, None) => unreachable!("a rule item has a check"),
                        };
                        rubric::ItemVerdict {
                            verdict,
                            score,
                            hard: ri.hard,
                            weight: ri.weight,
                        }
                    })
                    .collect();
                Verdict {
                    pass: checks.iter().all(|c| c.pass)
                        && rubric.iter().all(|i| !i.hard || i.verdict.pass),
                    rubric_score: rubric::rubric_score(&rubric),
                    checks,
                    rubric,
                }
            })
            .collect();
        Ok(verdicts)
    }

    /// The endpoints' scores of `queries`, in order: one batched, concurrent call per
    /// URL; every score must lie in [0, 1].
    fn score_urls(&self, queries: &[UrlQuery<'_>]) -> Result<Vec<f64>, VerifyError> {
        let mut by_url: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (q, query) in queries.iter().enumerate() {
            by_url.entry(query.url).or_default().push(q);
        }
        let mut scores = vec![0.0; queries.len()];
        for (url, members) in by_url {
            let endpoint = self.endpoint(url)?;
            let reward_items: Vec<reward_url::RewardItem<'_>> = members
                .iter()
                .map(|&q| reward_url::RewardItem {
                    prompt: queries[q].prompt,
                    response: queries[q].response,
                    label: queries[q].criterion,
                    name: queries[q].name.clone(),
                })
                .collect();
            let got = endpoint.score(&reward_items)?;
            for (&q, score) in members.iter().zip(got) {
                if !(0.0..=1.0).contains(&score) {
                    return Err(VerifyError::ScoreRange {
                        url: url.to_owned(),
                        item: queries[q].name.clone(),
                        score,
                    });
                }
                scores[q] = score;
            }
        }
        Ok(scores)
    }
}

/// The rules' verdict on a constraint or rubric item.
fn rule_verdict(label: String, check: rules::Check) -> ConstraintVerdict {
    ConstraintVerdict {
        constraint: label,
        checker: Checker::Rules,
        pass: check.pass,
        reason: check.reason,
        probability: None,
        rationale: None,
        note: None,
    }
}

/// A rubric endpoint's score as a verdict.
fn url_verdict(label: &str, score: f64, threshold: f32) -> ConstraintVerdict {
    let pass = score >= f64::from(threshold);
    ConstraintVerdict {
        constraint: label.to_owned(),
        checker: Checker::Url,
        pass,
        reason: (!pass).then(|| {
            format!(
                "{}: the endpoint scored {score:.2} < {threshold:.2}",
                data::truncate(label, 60)
            )
        }),
        probability: None,
        rationale: None,
        note: None,
    }
}

/// A judge's answer as a verdict.
fn judge_verdict(label: &str, answer: &judge::JudgeAnswer, threshold: f32) -> ConstraintVerdict {
    let pass = answer.probability.is_some_and(|p| p >= threshold);
    let reason = (!pass).then(|| {
        let name = data::truncate(label, 60);
        let mut reason = match answer.probability {
            Some(p) => format!("{name}: the judge says no (P(yes) {p:.2} < {threshold:.2})"),
            None => format!("{name}: the judge gave no verdict"),
        };
        if let Some(rationale) = answer.rationale.as_deref().filter(|r| !r.is_empty()) {
            reason.push_str(&format!(": {}", data::truncate(rationale, 200)));
        }
        if let Some(note) = &answer.note {
            reason.push_str(&format!(" ({note})"));
        }
        reason
    });
    ConstraintVerdict {
        constraint: label.to_owned(),
        checker: Checker::Judge,
        pass,
        reason,
        probability: answer.probability,
        rationale: answer.rationale.clone(),
        note: answer.note.clone(),
    }
}

// ---------------------------------------------------------------------------------
// Configuration (shared with commands that verify in-process, such as GRPO)
// ---------------------------------------------------------------------------------

/// The judge's options, on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct JudgeArgs {
    /// The judge: a decoder folder or hub id run locally on Burn, or, with
    /// --judge-url, the model name the endpoint serves.
    #[arg(long)]
    pub judge_model: Option<String>,
    /// An OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp server), e.g.
    /// http://localhost:8000/v1; /chat/completions is appended unless present.
    #[arg(long, requires = "judge_model")]
    pub judge_url: Option<String>,
    /// The judge's prompt template (placeholders {instruction}, {constraints},
    /// {response}, {answer_format}); default: data/judge/default.txt, built in.
    #[arg(long)]
    pub judge_template: Option<PathBuf>,
    /// Pass when P(yes) / (P(yes) + P(no)) is at least this.
    #[arg(long, default_value_t = 0.5)]
    pub judge_threshold: f32,
    /// Let the judge write a short rationale before its verdict (slower).
    #[arg(long)]
    pub judge_reason: bool,
    /// Longest rationale, in tokens.
    #[arg(long, default_value_t = 128)]
    pub judge_reason_tokens: usize,
    /// Local judge: sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub judge_batch_size: usize,
    /// Local judge: longest input in tokens; longer responses are shortened in the
    /// middle (the verdict's note says so).
    #[arg(long, default_value_t = 2048)]
    pub judge_max_tokens: usize,
    /// Local judge: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub judge_device: DeviceSpec,
    /// Local judge: the dtype it computes in (its weights loaded directly in it; the
    /// yes/no probabilities in f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub judge_dtype: crate::models::load::ComputeDtype,
    /// Remote judge: the environment variable holding the API key (never printed).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub judge_api_key_env: String,
    /// Remote judge: requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub judge_concurrency: usize,
    /// Remote judge: seconds allowed for one request.
    #[arg(long, default_value_t = 120.0)]
    pub judge_timeout: f64,
    /// Remote judge: retries after a failed request (connection errors, timeouts,
    /// HTTP 429 and 5xx, unreadable answers), with exponential backoff and jitter.
    #[arg(long, default_value_t = 5)]
    pub judge_retries: u32,
    /// Remote judge: first backoff in seconds (doubled per retry, at most 60 s).
    #[arg(long, default_value_t = 1.0)]
    pub judge_backoff: f64,
    /// Remote judge: the answer cache folder (default: ~/.cache/rmtk/judge).
    #[arg(long)]
    pub judge_cache: Option<PathBuf>,
    /// Remote judge: don't read or write the answer cache.
    #[arg(long, conflicts_with = "judge_cache")]
    pub no_judge_cache: bool,
    /// Remote judge: don't ask for log-probabilities (the verdict is then read from
    /// the answer's text, as 0 or 1).
    #[arg(long)]
    pub judge_no_logprobs: bool,
}

/// The verifier's options, on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifierArgs {
    /// rules, judge or hybrid; default: hybrid with a judge, else rules.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Rules: IFEval's loose variant (also tries the response without its first
    /// and/or last line and without `*`).
    #[arg(long)]
    pub loose: bool,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Reward endpoints: GRPO's --reward-url and rubric items checked by a URL.
    #[command(flatten)]
    pub reward: reward_url::RewardArgs,
}

/// Which judge the arguments configure.
#[derive(Debug, Clone, PartialEq)]
pub enum JudgeKind {
    None,
    Local(String),
    Remote { url: String, model: String },
}

impl VerifierArgs {
    pub fn judge_kind(&self) -> JudgeKind {
        match (&self.judge.judge_model, &self.judge.judge_url) {
            (Some(model), Some(url)) => JudgeKind::Remote {
                url: url.clone(),
                model: model.clone(),
            },
            (Some(model), None) => JudgeKind::Local(model.clone()),
            (None, _) => JudgeKind::None,
        }
    }

    /// The mode: as given, or hybrid with a judge and rules without.
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(match self.judge_kind() {
            JudgeKind::None => Mode::Rules,
            _ => Mode::Hybrid,
        })
    }

    pub fn options(&self) -> VerifierOptions {
        VerifierOptions {
            mode: self.mode(),
            loose: self.loose,
            threshold: self.judge.judge_threshold,
        }
    }

    fn template(&self) -> Result<judge::Template> {
        Ok(match &self.judge.judge_template {
            Some(path) => judge::Template::from_file(path)?,
            None => judge::Template::default(),
        })
    }

    /// Checks the options that need no model or network.
    pub fn validate(&self) -> Result<()> {
        let j = &self.judge;
        if !(0.0..=1.0).contains(&j.judge_threshold) {
            bail!("--judge-threshold must be within [0, 1]");
        }
        if self.mode() != Mode::Rules && self.judge_kind() == JudgeKind::None {
            bail!(
                "--mode {} needs a judge: --judge-model DIR (local) or --judge-model NAME --judge-url URL (remote)",
                self.mode().as_str()
            );
        }
        if j.judge_batch_size == 0 || j.judge_concurrency == 0 {
            bail!("--judge-batch-size and --judge-concurrency must be at least 1");
        }
        if j.judge_reason && j.judge_reason_tokens == 0 {
            bail!("--judge-reason-tokens must be at least 1");
        }
        if !(j.judge_timeout.is_finite() && j.judge_timeout > 0.0) {
            bail!("--judge-timeout must be a positive number of seconds");
        }
        if !(j.judge_backoff.is_finite() && j.judge_backoff >= 0.0) {
            bail!("--judge-backoff must be a number of seconds >= 0");
        }
        self.template()?;
        self.reward.validate()?;
        Ok(())
    }

    /// The options that decide verdicts, as text: everything but how endpoints are
    /// reached (timeouts, retries, backoff, concurrency, caches, key variables), so
    /// that a run stopped by an endpoint can resume with more patience.
    pub fn decision_fingerprint(&self) -> String {
        let mut a = self.clone();
        let j = &mut a.judge;
        (
            j.judge_concurrency,
            j.judge_timeout,
            j.judge_retries,
            j.judge_backoff,
        ) = (0, 0.0, 0, 0.0);
        (j.judge_cache, j.no_judge_cache, j.judge_api_key_env) = (None, false, String::new());
        a.reward = reward_url::RewardArgs::default();
        format!("{a:?}")
    }

    /// The remote judge's options (the API key read from its variable).
    pub fn remote_options(&self, url: &str, model: &str) -> Result<RemoteOptions> {
        let j = &self.judge;
        let cache_dir = if j.no_judge_cache {
            None
        } else {
            Some(match &j.judge_cache {
                Some(dir) => dir.clone(),
                None => default_cache_dir(),
            })
        };
        Ok(RemoteOptions {
            api_key: Secret::from_env(&j.judge_api_key_env),
            template: self.template()?,
            reason: j.judge_reason,
            reason_tokens: j.judge_reason_tokens,
            concurrency: j.judge_concurrency,
            timeout: Duration::from_secs_f64(j.judge_timeout),
            retries: j.judge_retries,
            backoff: Duration::from_secs_f64(j.judge_backoff),
            max_backoff: Duration::from_secs(60),
            cache_dir,
            logprobs: !j.judge_no_logprobs,
            ..RemoteOptions::new(url, model)
        })
    }

    /// The local judge's options.
    pub fn burn_options(&self) -> Result<BurnJudgeOptions> {
        let j = &self.judge;
        Ok(BurnJudgeOptions {
            template: self.template()?,
            reason: j.judge_reason,
            reason_tokens: j.judge_reason_tokens,
            batch_size: j.judge_batch_size,
            max_tokens: j.judge_max_tokens,
            dtype: j.judge_dtype,
        })
    }
}

/// `$XDG_CACHE_HOME/rmtk/judge`, else `~/.cache/rmtk/judge`, else `.rmtk-judge-cache`.
fn default_cache_dir() -> PathBuf {
    http::default_cache_dir("judge")
}

/// Builds the verifier the arguments describe, a local judge on backend `B` and
/// `device` (loaded once; keep the verifier to share it).
pub fn build_verifier<B: FusedOps>(args: &VerifierArgs, device: &B::Device) -> Result<Verifier> {
    args.validate()?;
    let judge: Option<Box<dyn Judge + Send>> = match args.judge_kind() {
        JudgeKind::None => None,
        JudgeKind::Remote { url, model } => Some(Box::new(RemoteJudge::new(
            args.remote_options(&url, &model)?,
        )?)),
        JudgeKind::Local(model) => {
            let dir = ModelDir::open(&model).context("--judge-model")?;
            Some(Box::new(BurnJudge::<B>::load(
                &dir,
                args.burn_options()?,
                device,
            )?))
        }
    };
    Ok(Verifier::new(args.options(), judge)?.with_reward_args(args.reward.clone()))
}

/// Runs `body` with the verifier the arguments describe: a local judge on the
/// backend `--judge-device` names.
pub fn with_verifier<T>(
    args: &VerifierArgs,
    body: impl FnOnce(&Verifier) -> Result<T>,
) -> Result<T> {
    struct WithVerifier<'a, F> {
        args: &'a VerifierArgs,
        body: F,
    }
    impl<T, F: FnOnce(&Verifier) -> Result<T>> Job for WithVerifier<'_, F> {
        type Output = T;
        fn run<B: FusedOps>(self, device: B::Device) -> Result<T> {
            let verifier = build_verifier::<B>(self.args, &device)?;
            (self.body)(&verifier)
        }
    }
    let device = match args.judge_kind() {
        JudgeKind::Local(_) => args.judge.judge_device,
        _ => DeviceSpec::Cpu,
    };
    run_on(device, WithVerifier { args, body })
}

// ---------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------

/// Verify responses against constraints: IFEval rules, an LLM judge (local on Burn,
/// or an OpenAI-compatible endpoint), or both; or run IFEval's evaluation.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "ifeval", "ifbench"])))]
pub struct VerifyConfig {
    /// Rows to verify (parquet or JSONL): a prompt, a response, and constraints as
    /// IFEval `instruction_id_list` + `kwargs`, a `constraints` list of texts, or
    /// neither (the judge reads them from the prompt).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// IFEval mode: the prompts and instructions (IFEval's input_data.jsonl).
    #[arg(long, requires = "responses", conflicts_with = "input")]
    pub ifeval: Option<PathBuf>,
    /// IFBench mode: the prompts and instructions (IFBench_test.jsonl); the 58 IFBench
    /// constraints, checked as the official IFBench checker does.
    #[arg(long, requires = "responses", conflicts_with_all = ["input", "ifeval"])]
    pub ifbench: Option<PathBuf>,
    /// IFEval / IFBench mode: the responses, `{prompt, response}` rows matched by
    /// prompt text.
    #[arg(long)]
    pub responses: Option<PathBuf>,
    /// Where to write the verdicts (.jsonl or .parquet); required with --input.
    #[arg(long, required_unless_present_any = ["ifeval", "ifbench"])]
    pub output: Option<PathBuf>,
    /// Also write the run's numbers as JSON here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// The prompt column (text, or a list of {role, content} messages).
    #[arg(long, default_value = "prompt")]
    pub prompt_column: String,
    /// The response column [default: `response`, else `completion`].
    #[arg(long)]
    pub response_column: Option<String>,
    /// The IFEval instruction ids column [default: `instruction_id_list`, if present].
    #[arg(long)]
    pub ids_column: Option<String>,
    /// The IFEval kwargs column [default: `kwargs`, if present].
    #[arg(long)]
    pub kwargs_column: Option<String>,
    /// The free-text constraints column [default: `constraints`, if present].
    #[arg(long)]
    pub constraints_column: Option<String>,
    /// The rubric column: items {criterion, weight, hard, check} checked by the rules,
    /// the judge or an endpoint [default: `rubric`, if present].
    #[arg(long)]
    pub rubric_column: Option<String>,
    /// Read no rubric (a `rubric` column of another kind).
    #[arg(long, conflicts_with = "rubric_column")]
    pub no_rubric: bool,
    /// Skip rows that cannot be verified (they are counted, and written with a null
    /// `pass` and an `error`) instead of stopping before any work.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Continue an interrupted run from OUTPUT.partial.jsonl.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub verifier: VerifierArgs,
}

/// Rows per judge call (and per durable write of the partial output).
const JUDGE_CHUNK: usize = 64;

pub fn run(cfg: VerifyConfig) -> Result<()> {
    cfg.verifier.validate()?;
    if cfg.ifeval.is_some() {
        return ifeval::run(&cfg);
    }
    if cfg.ifbench.is_some() {
        return ifbench::run(&cfg);
    }
    if cfg.responses.is_some() {
        anyhow::bail!(
            "--responses goes with --ifeval or --ifbench (with --input, the responses are a column of the input)"
        );
    }
    let input = cfg
        .input
        .as_deref()
        .expect("clap requires --input or --ifeval");
    let output = cfg
        .output
        .as_deref()
        .expect("clap requires --output with --input");
    let mode = cfg.verifier.mode();
    let table = data::read_table(input)?;
    let columns = input::Columns::resolve(
        &table,
        &input::ColumnNames {
            prompt: cfg.prompt_column.clone(),
            response: cfg.response_column.clone(),
            ids: cfg.ids_column.clone(),
            kwargs: cfg.kwargs_column.clone(),
            constraints: cfg.constraints_column.clone(),
            rubric: cfg.rubric_column.clone(),
            no_rubric: cfg.no_rubric,
        },
        mode,
    )?;
    let with_rubric = columns.rubric.is_some();
    let parsed = input::parse_rows(&table, &columns, mode);
    let bad: Vec<(usize, String)> = parsed
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.to_string())))
        .collect();
    if !bad.is_empty() && !cfg.skip_bad_rows {
        bail!(bad_rows_message(&bad));
    }
    let forms = input::FormCounts::of(&parsed);
    eprintln!(
        "{}: {} rows ({}); mode {}",
        input.display(),
        table.rows.len(),
        forms,
        mode.as_str()
    );
    let fingerprint = run_fingerprint(input, &cfg)?;
    let endpoints = rubric::endpoints(
        parsed
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| r.constraints.rubric()),
    );
    if !endpoints.is_empty() {
        eprintln!(
            "{}",
            rubric::describe_endpoints(&endpoints, &cfg.verifier.reward)
        );
    }
    with_verifier(&cfg.verifier, |verifier| {
        let started = Instant::now();
        let good: Vec<usize> = (0..parsed.len()).filter(|&i| parsed[i].is_ok()).collect();
        // Progress is kept on disk when a call can fail halfway: a judge, an endpoint.
        let durable = verifier.judge().is_some()
            || good.iter().any(|&i| {
                parsed[i]
                    .as_ref()
                    .is_ok_and(|r| r.constraints.rubric().has_urls())
            });
        let mut progress = durable
            .then(|| output::Partial::open(output, &fingerprint, cfg.resume))
            .transpose()?;
        let mut done: BTreeMap<usize, (Row, Verdict)> = BTreeMap::new();
        let mut stats = Stats::default();
        if let Some(p) = &mut progress {
            for (i, row) in p.take_resumed() {
                let rubric = parsed
                    .get(i)
                    .and_then(|r| r.as_ref().ok())
                    .map(|r| r.constraints.rubric());
                if let Some(verdict) = verdict_from_row(&row, rubric) {
                    stats.add(&verdict);
                    done.insert(i, (row, verdict));
                }
            }
            if !done.is_empty() {
                eprintln!("resuming: {} rows already verified", done.len());
            }
        }
        let todo: Vec<usize> = good.into_iter().filter(|i| !done.contains_key(i)).collect();
        let chunk = if durable {
            JUDGE_CHUNK
        } else {
            todo.len().max(1)
        };
        let bar = crate::util::progress_bar(todo.len() as u64, "verify");
        for rows in todo.chunks(chunk) {
            let items: Vec<VerifyItem<'_>> = rows
                .iter()
                .map(|&i| {
                    let row = parsed[i].as_ref().expect("only good rows are verified");
                    VerifyItem {
                        prompt: &row.prompt,
                        response: &row.response,
                        constraints: &row.constraints,
                    }
                })
                .collect();
            let name = |k: usize| format!("{} row {}", input.display(), rows[k]);
            let verdicts = verifier.verify_named(&items, &name).map_err(|e| {
                let saved = progress
                    .as_ref()
                    .map(|p| p.resume_hint(done.len()))
                    .unwrap_or_default();
                anyhow::anyhow!("{e}{saved}")
            })?;
            let mut finished = Vec::with_capacity(rows.len());
            for (&i, verdict) in rows.iter().zip(verdicts) {
                stats.add(&verdict);
                let row = output_row(&table.rows[i], &verdict, verifier, with_rubric);
                finished.push((i, row.clone()));
                done.insert(i, (row, verdict));
            }
            if let Some(p) = &mut progress {
                p.append(&finished)?;
            }
            bar.inc(rows.len() as u64);
        }
        bar.finish_and_clear();
        let skipped: BTreeMap<usize, &str> = bad.iter().map(|(i, e)| (*i, e.as_str())).collect();
        let overwritten = overwritten_columns(&table.columns, verifier, with_rubric);
        let rows: Vec<Row> = (0..table.rows.len())
            .map(|i| match (done.remove(&i), skipped.get(&i)) {
                (Some((row, _)), _) => row,
                (None, error) => error_row(&table.rows[i], error.copied(), verifier, with_rubric),
            })
            .collect();
        data::write_rows(output, &rows)?;
        if let Some(p) = progress {
            p.finish()?;
        }
        if !overwritten.is_empty() {
            eprintln!(
                "note: the input's columns {} were replaced by this run's",
                overwritten.join(", ")
            );
        }
        let elapsed = started.elapsed().as_secs_f64();
        let summary = stats.summary(table.rows.len(), &bad, elapsed, verifier);
        eprint!("{}", stats.render(&bad, elapsed, verifier));
        eprintln!("wrote {} rows to {}", rows.len(), output.display());
        if let Some(path) = &cfg.summary {
            write_summary(path, &summary)?;
        }
        Ok(())
    })
}

/// The error for bad rows: the first, and how many more.
pub(crate) fn bad_rows_message(bad: &[(usize, String)]) -> String {
    let (_, first) = &bad[0];
    if bad.len() == 1 {
        format!("{first} (--skip-bad-rows skips such rows)")
    } else {
        let rows: Vec<String> = bad
            .iter()
            .skip(1)
            .take(10)
            .map(|(i, _)| i.to_string())
            .collect();
        let more = if bad.len() > 11 { ", ..." } else { "" };
        format!(
            "{first} (and {} more bad rows: {}{more}; --skip-bad-rows skips them)",
            bad.len() - 1,
            rows.join(", ")
        )
    }
}

/// What makes a partial output belong to this run: the input file and the options.
fn run_fingerprint(input: &Path, cfg: &VerifyConfig) -> Result<String> {
    let meta = std::fs::metadata(input).with_context(|| input.display().to_string())?;
    let text = format!(
        "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        input.display(),
        meta.len(),
        cfg.verifier.decision_fingerprint(),
        cfg.prompt_column,
        cfg.response_column,
        cfg.ids_column,
        cfg.kwargs_column,
        cfg.constraints_column,
        cfg.rubric_column
    );
    Ok(crate::util::fnv128_hex(text.as_bytes()))
}

fn write_summary(path: &Path, summary: &Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(summary).expect("JSON values serialize");
    crate::util::write_atomic(path, &bytes).with_context(|| format!("--summary {}", path.display()))
}

/// The columns a run adds to each row.
const OUTPUT_COLUMNS: [&str; 13] = [
    "pass",
    "constraint_verdicts",
    "constraint_names",
    "checked_by",
    "reasons",
    "judge_probabilities",
    "judge_rationales",
    "rubric_verdicts",
    "rubric_scores",
    "rubric_checked_by",
    "rubric_score",
    "rubric_rationales",
    "error",
];

/// Whether a run writes `column` (some only with a judge, a rationale or a rubric).
fn writes_column(column: &str, verifier: &Verifier, rubric: bool) -> bool {
    match column {
        "judge_probabilities" => verifier.judge().is_some(),
        "judge_rationales" => wants_rationales(verifier),
        "rubric_rationales" => rubric && wants_rationales(verifier),
        c if c.starts_with("rubric_") => rubric,
        _ => true,
    }
}

fn overwritten_columns(columns: &[String], verifier: &Verifier, rubric: bool) -> Vec<String> {
    let added: BTreeSet<&str> = OUTPUT_COLUMNS
        .iter()
        .copied()
        .filter(|c| writes_column(c, verifier, rubric))
        .collect();
    columns
        .iter()
        .filter(|c| added.contains(c.as_str()))
        .map(|c| format!("`{c}`"))
        .collect()
}

fn wants_rationales(verifier: &Verifier) -> bool {
    verifier.judge().is_some_and(|j| j.writes_rationales())
}

/// Verify rows given in memory (as `rmtk serve`'s `/v1/verify` receives them), with the
/// default column names of `rmtk verify`: each row comes back with the verdict columns
/// `rmtk verify` writes. A bad row is an error naming its index (`what` names the
/// source, e.g. `request`).
pub fn verify_rows(verifier: &Verifier, rows: Vec<Row>, what: &str) -> Result<Vec<Row>> {
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for key in row.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let table = data::Table {
        path: PathBuf::from(what),
        types: vec![String::new(); columns.len()],
        columns,
        rows,
        bad: Vec::new(),
    };
    let mode = verifier.options().mode;
    let names = input::ColumnNames {
        prompt: "prompt".into(),
        ..Default::default()
    };
    let columns = input::Columns::resolve(&table, &names, mode)?;
    let with_rubric = columns.rubric.is_some();
    let parsed = input::parse_rows(&table, &columns, mode)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let items: Vec<VerifyItem<'_>> = parsed
        .iter()
        .map(|row| VerifyItem {
            prompt: &row.prompt,
            response: &row.response,
            constraints: &row.constraints,
        })
        .collect();
    let name = |k: usize| format!("{what} row {k}");
    let verdicts = verifier.verify_named(&items, &name)?;
    Ok(table
        .rows
        .iter()
        .zip(&verdicts)
        .map(|(row, verdict)| output_row(row, verdict, verifier, with_rubric))
        .collect())
}

/// A score as written: six decimals.
fn round6(x: f64) -> Value {
    json!((x * 1e6).round() / 1e6)
}

/// An input row with its verdict's columns.
fn output_row(input: &Row, verdict: &Verdict, verifier: &Verifier, rubric: bool) -> Row {
    let mut row = input.clone();
    row.insert("pass".into(), json!(verdict.pass));
    let list = |f: &dyn Fn(&ConstraintVerdict) -> Value| -> Value {
        Value::Array(verdict.checks.iter().map(f).collect())
    };
    row.insert("constraint_verdicts".into(), list(&|c| json!(c.pass)));
    row.insert("constraint_names".into(), list(&|c| json!(c.constraint)));
    row.insert("checked_by".into(), list(&|c| json!(c.checker.as_str())));
    row.insert(
        "reasons".into(),
        Value::Array(verdict.reasons().map(|r| json!(r)).collect()),
    );
    if verifier.judge().is_some() {
        row.insert(
            "judge_probabilities".into(),
            list(&|c| match c.probability {
                Some(p) => json!((f64::from(p) * 1e6).round() / 1e6),
                None => Value::Null,
            }),
        );
    }
    if wants_rationales(verifier) {
        row.insert("judge_rationales".into(), list(&|c| json!(c.rationale)));
    }
    if rubric {
        let items = |f: &dyn Fn(&rubric::ItemVerdict) -> Value| -> Value {
            Value::Array(verdict.rubric.iter().map(f).collect())
        };
        row.insert("rubric_verdicts".into(), items(&|i| json!(i.verdict.pass)));
        row.insert("rubric_scores".into(), items(&|i| round6(i.score)));
        row.insert(
            "rubric_checked_by".into(),
            items(&|i| json!(i.checker().as_str())),
        );
        row.insert(
            "rubric_score".into(),
            verdict.rubric_score.map_or(Value::Null, round6),
        );
        if wants_rationales(verifier) {
            row.insert(
                "rubric_rationales".into(),
                items(&|i| json!(i.verdict.rationale)),
            );
        }
    }
    row
}

/// A row that was not verified: null verdict columns and the error.
fn error_row(input: &Row, error: Option<&str>, verifier: &Verifier, rubric: bool) -> Row {
    let mut row = input.clone();
    for column in OUTPUT_COLUMNS {
        if writes_column(column, verifier, rubric) {
            row.insert(column.into(), Value::Null);
        }
    }
    row.insert(
        "error".into(),
        json!(error.unwrap_or("not verified (no error was recorded)")),
    );
    row
}

/// Recovers a verdict from a row written by [`output_row`] (to resume a run), its
/// rubric items named and weighed by the input row's `rubric`.
fn verdict_from_row(row: &Row, rubric: Option<&rubric::Rubric>) -> Option<Verdict> {
    let pass = row.get("pass")?.as_bool()?;
    let list = |k: &str| {
        row.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (verdicts, names, by, probabilities) = (
        list("constraint_verdicts"),
        list("constraint_names"),
        list("checked_by"),
        list("judge_probabilities"),
    );
    let checks = verdicts
        .iter()
        .enumerate()
        .map(|(k, v)| ConstraintVerdict {
            constraint: names
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            checker: match by.get(k).and_then(Value::as_str) {
                Some("judge") => Checker::Judge,
                _ => Checker::Rules,
            },
            pass: v.as_bool().unwrap_or(false),
            reason: None,
            probability: probabilities
                .get(k)
                .and_then(Value::as_f64)
                .map(|p| p as f32),
            rationale: None,
            note: None,
        })
        .collect();
    let (item_pass, item_scores, item_by) = (
        list("rubric_verdicts"),
        list("rubric_scores"),
        list("rubric_checked_by"),
    );
    let items = rubric.map_or(&[][..], |r| r.items());
    if item_pass.len() != items.len() {
        // Written by a run that read the rubric otherwise: verify the row again.
        return None;
    }
    let rubric: Vec<rubric::ItemVerdict> = items
        .iter()
        .enumerate()
        .map(|(k, item)| rubric::ItemVerdict {
            verdict: ConstraintVerdict {
                constraint: item.criterion.clone(),
                checker: match item_by.get(k).and_then(Value::as_str) {
                    Some("judge") => Checker::Judge,
                    Some("url") => Checker::Url,
                    _ => Checker::Rules,
                },
                pass: item_pass[k].as_bool().unwrap_or(false),
                reason: None,
                // A judge item's score is its P(yes).
                probability: (item_by.get(k).and_then(Value::as_str) == Some("judge"))
                    .then(|| item_scores.get(k).and_then(Value::as_f64).unwrap_or(0.0) as f32),
                rationale: None,
                note: None,
            },
            score: item_scores.get(k).and_then(Value::as_f64).unwrap_or(0.0),
            hard: item.hard,
            weight: item.weight,
        })
        .collect();
    Some(Verdict {
        pass,
        checks,
        rubric_score: rubric::rubric_score(&rubric),
        rubric,
    })
}

/// Counts for the run's summary.
#[derive(Debug, Default)]
struct Stats {
    rows: usize,
    passed: usize,
    rule_checks: usize,
    rule_passed: usize,
    judge_checks: usize,
    judge_passed: usize,
    judge_no_verdict: usize,
    judge_shortened: usize,
    probability_sum: f64,
    by_constraint: BTreeMap<String, (usize, usize)>,
    /// Rows with a rubric; their items, hard and soft.
    rubric_rows: usize,
    hard_items: usize,
    hard_passed: usize,
    soft_items: usize,
    soft_score_sum: f64,
    /// Rows with a rubric score, and its sum.
    rubric_scored: usize,
    rubric_score_sum: f64,
}

impl Stats {
    /// A judge's check: of a constraint or of a rubric item (which scores 0 when the
    /// judge gave no verdict; counted here).
    fn add_judge(&mut self, check: &ConstraintVerdict) {
        self.judge_checks += 1;
        self.judge_passed += usize::from(check.pass);
        match check.probability {
            Some(p) => self.probability_sum += f64::from(p),
            None => self.judge_no_verdict += 1,
        }
        if check
            .note
            .as_deref()
            .is_some_and(|n| n.contains("shortened"))
        {
            self.judge_shortened += 1;
        }
    }

    fn add(&mut self, verdict: &Verdict) {
        self.rows += 1;
        self.passed += usize::from(verdict.pass);
        if !verdict.rubric.is_empty() {
            self.rubric_rows += 1;
        }
        for item in &verdict.rubric {
            if item.checker() == Checker::Judge {
                self.add_judge(&item.verdict);
            }
            if item.hard {
                self.hard_items += 1;
                self.hard_passed += usize::from(item.verdict.pass);
            } else {
                self.soft_items += 1;
                self.soft_score_sum += item.score;
            }
        }
        if let Some(score) = verdict.rubric_score {
            self.rubric_scored += 1;
            self.rubric_score_sum += score;
        }
        for check in &verdict.checks {
            match check.checker {
                Checker::Rules => {
                    self.rule_checks += 1;
                    self.rule_passed += usize::from(check.pass);
                    let entry = self
                        .by_constraint
                        .entry(check.constraint.clone())
                        .or_default();
                    entry.0 += usize::from(check.pass);
                    entry.1 += 1;
                }
                // Only rubric items have endpoints (counted below).
                Checker::Url => {}
                Checker::Judge => self.add_judge(check),
            }
        }
    }

    fn render(&self, bad: &[(usize, String)], elapsed: f64, verifier: &Verifier) -> String {
        let pct = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        let mut out = format!(
            "verified {} rows in {:.2}s ({:.1} rows/s): {} pass ({:.2}%)\n",
            self.rows,
            elapsed,
            self.rows as f64 / elapsed.max(1e-9),
            self.passed,
            pct(self.passed, self.rows)
        );
        if !bad.is_empty() {
            out.push_str(&format!(
                "skipped {} bad rows (null pass, `error` column), the first: {}\n",
                bad.len(),
                bad[0].1
            ));
        }
        if self.rule_checks > 0 {
            out.push_str(&format!(
                "rules: {} checks, {:.2}% passed ({})\n",
                self.rule_checks,
                pct(self.rule_passed, self.rule_checks),
                if verifier.options().loose {
                    "loose"
                } else {
                    "strict"
                }
            ));
        }
        if self.judge_checks > 0 {
            let judged = self.judge_checks - self.judge_no_verdict;
            out.push_str(&format!(
                "judge: {} checks, {:.2}% passed, mean P(yes) {:.3}{}{}\n",
                self.judge_checks,
                pct(self.judge_passed, self.judge_checks),
                self.probability_sum / judged.max(1) as f64,
                if self.judge_no_verdict > 0 {
                    format!(", {} without a yes/no answer", self.judge_no_verdict)
                } else {
                    String::new()
                },
                if self.judge_shortened > 0 {
                    format!(
                        ", {} with the response shortened to fit --judge-max-tokens",
                        self.judge_shortened
                    )
                } else {
                    String::new()
                }
            ));
        }
        if let Some(stats) = verifier.judge().and_then(|j| j.stats()) {
            out.push_str(&format!("judge endpoint: {stats}\n"));
        }
        if self.rubric_rows > 0 {
            let mut parts = vec![format!("{} rows with a rubric", self.rubric_rows)];
            if self.hard_items > 0 {
                parts.push(format!(
                    "hard items {:.2}% passed ({} of {})",
                    pct(self.hard_passed, self.hard_items),
                    self.hard_passed,
                    self.hard_items
                ));
            }
            if self.soft_items > 0 {
                parts.push(format!(
                    "soft items' mean score {:.3} ({})",
                    self.soft_score_sum / self.soft_items as f64,
                    self.soft_items
                ));
            }
            if self.rubric_scored > 0 {
                parts.push(format!(
                    "mean rubric score {:.3}",
                    self.rubric_score_sum / self.rubric_scored as f64
                ));
            }
            out.push_str(&format!("rubric: {}\n", parts.join("; ")));
        }
        for line in verifier.endpoint_stats() {
            out.push_str(&format!("rubric endpoint {line}\n"));
        }
        out
    }

    fn summary(
        &self,
        total: usize,
        bad: &[(usize, String)],
        elapsed: f64,
        verifier: &Verifier,
    ) -> Value {
        json!({
            "rows": total,
            "verified": self.rows,
            "skipped": bad.len(),
            "skipped_rows": bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            "pass": self.passed,
            "pass_rate": if self.rows == 0 { 0.0 } else { self.passed as f64 / self.rows as f64 },
            "mode": verifier.options().mode.as_str(),
            "loose": verifier.options().loose,
            "judge": verifier.judge().map(|j| j.describe()),
            "rule_checks": self.rule_checks,
            "rule_checks_passed": self.rule_passed,
            "judge_checks": self.judge_checks,
            "judge_checks_passed": self.judge_passed,
            "judge_checks_without_verdict": self.judge_no_verdict,
            "judge_inputs_shortened": self.judge_shortened,
            "by_instruction": self.by_constraint.iter().map(|(k, (p, t))| (k.clone(), json!({"passed": p, "total": t}))).collect::<Map<String, Value>>(),
            "rubric": (self.rubric_rows > 0).then(|| json!({
                "rows": self.rubric_rows,
                "hard_items": self.hard_items,
                "hard_items_passed": self.hard_passed,
                "soft_items": self.soft_items,
                "soft_score_mean": (self.soft_items > 0).then(|| self.soft_score_sum / self.soft_items as f64),
                "rubric_score_mean": (self.rubric_scored > 0).then(|| self.rubric_score_sum / self.rubric_scored as f64),
            })),
            "seconds": elapsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kwargs(values: &[Value]) -> Vec<Map<String, Value>> {
        values
            .iter()
            .map(|v| v.as_object().cloned().unwrap_or_default())
            .collect()
    }

    /// A judge that says yes to everything and records what it was asked.
    struct YesJudge(std::sync::Mutex<Vec<String>>);

    impl Judge for YesJudge {
        fn judge(&self, queries: &[JudgeQuery<'_>]) -> Result<Vec<judge::JudgeAnswer>, JudgeError> {
            let mut asked = self.0.lock().expect("not poisoned");
            asked.extend(queries.iter().map(|q| q.constraint.to_string()));
            Ok(queries
                .iter()
                .map(|_| judge::JudgeAnswer {
                    probability: Some(0.9),
                    rationale: None,
                    note: None,
                    answer_mass: None,
                })
                .collect())
        }

        fn describe(&self) -> String {
            "yes".into()
        }
    }

    #[test]
    fn ifeval_and_ifbench_ids_mix_in_one_set() {
        let ids = ["punctuation:no_comma", "count:numbers"];
        let set = ConstraintSet::ifeval(None, &ids, &kwargs(&[json!({}), json!({"N": 2.0})]))
            .expect("both build");
        assert!(!set.needs_judge());
        let items = ["I have 2 cats and 3 dogs", "I have 2 cats, 3 dogs", "one"].map(|response| {
            VerifyItem {
                prompt: "p",
                response,
                constraints: &set,
            }
        });
        let verdicts = Verifier::rules(false).verify(&items).expect("rules decide");
        let passes: Vec<Vec<bool>> = verdicts
            .iter()
            .map(|v| v.checks.iter().map(|c| c.pass).collect())
            .collect();
        assert_eq!(passes, [[true, true], [false, true], [true, false]]);
        assert_eq!(verdicts[2].checks[1].constraint, "count:numbers");
        let reason = verdicts[2].checks[1].reason.clone().unwrap_or_default();
        assert!(reason.starts_with("count:numbers: "), "{reason}");
    }

    #[test]
    fn unknown_ids_list_both_benchmarks() {
        let err = ConstraintSet::ifeval(None, &["count:nothing"], &kwargs(&[json!({})]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the IFEval and IFBench ids are"), "{err}");
        assert!(
            err.contains("punctuation:no_comma") && err.contains("format:emoji"),
            "{err}"
        );
    }

    #[test]
    fn undecidable_ifbench_instructions_go_to_the_judge() {
        let ids = ["ratio:stop_words", "count:numbers"];
        let args = kwargs(&[json!({"percentage": 40}), json!({"N": 1})]);
        let set = ConstraintSet::ifeval(None, &ids, &args).expect("builds");
        assert!(set.needs_judge());
        let items = [VerifyItem {
            prompt: "p",
            response: "The 1 cat.",
            constraints: &set,
        }];
        let err = Verifier::rules(false)
            .verify(&items)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("IFBench instruction the rules cannot decide"),
            "{err}"
        );

        let judge = YesJudge(Default::default());
        let options = VerifierOptions {
            mode: Mode::Hybrid,
            ..VerifierOptions::default()
        };
        let verifier = Verifier::new(options, Some(Box::new(judge))).expect("a verifier");
        let verdicts = verifier.verify(&items).expect("hybrid decides");
        let checkers: Vec<Checker> = verdicts[0].checks.iter().map(|c| c.checker).collect();
        assert_eq!(checkers, [Checker::Judge, Checker::Rules]);
        assert!(verdicts[0].pass);
    }

    #[test]
    fn a_stopped_run_resumes_with_other_transport_options_only() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            v: VerifierArgs,
        }
        let fp = |args: &[&str]| {
            let argv = std::iter::once("rmtk").chain(args.iter().copied());
            <Cli as clap::Parser>::parse_from(argv)
                .v
                .decision_fingerprint()
        };
        let base = fp(&[]);
        let patient = fp(&[
            "--judge-timeout",
            "600",
            "--judge-retries",
            "20",
            "--judge-concurrency",
            "2",
            "--reward-timeout",
            "300",
            "--reward-retries",
            "9",
            "--no-reward-cache",
            "--reward-key-origin",
            "https://grader.example.org",
        ]);
        assert_eq!(base, patient);
        assert_ne!(base, fp(&["--judge-threshold", "0.7"]));
        assert_ne!(base, fp(&["--loose"]));
    }

    #[test]
    fn rubric_items_go_to_the_rules_or_the_judge_and_score() {
        let mut set = ConstraintSet::ifeval(None, &["punctuation:no_comma"], &kwargs(&[json!({})]))
            .expect("builds");
        set.set_rubric(
            rubric::Rubric::parse(
                &json!([
                    {"criterion": "Surprising ending", "weight": 3},
                    {"criterion": "Vivid", "hard": true, "check": {"judge": "Is the imagery vivid?"}},
                    {"criterion": "Starts with Rain", "weight": 1, "check": {"rule": "startend:quotation"}},
                ]),
                None,
            )
            .expect("a rubric"),
        );
        assert!(set.needs_judge());
        let items = [VerifyItem {
            prompt: "Write about rain.",
            response: "Rain falls",
            constraints: &set,
        }];
        let err = Verifier::rules(false).verify(&items).unwrap_err();
        assert!(
            err.to_string()
                .contains("a rubric item checked by the judge needs a judge"),
            "{err}"
        );
        /// Says yes with 0.9 and shares what it was asked.
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl Judge for Shared {
            fn judge(
                &self,
                queries: &[JudgeQuery<'_>],
            ) -> Result<Vec<judge::JudgeAnswer>, JudgeError> {
                let inner = YesJudge(Default::default());
                let answers = inner.judge(queries)?;
                self.0
                    .lock()
                    .expect("not poisoned")
                    .extend(inner.0.into_inner().expect("not poisoned"));
                Ok(answers)
            }
            fn describe(&self) -> String {
                "shared".into()
            }
        }
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let options = VerifierOptions {
            mode: Mode::Hybrid,
            ..VerifierOptions::default()
        };
        let verifier =
            Verifier::new(options, Some(Box::new(Shared(asked.clone())))).expect("a verifier");
        let v = &verifier.verify(&items).expect("verified")[0];
        assert!(v.pass, "no comma, and the hard judge item says yes");
        let scores: Vec<f64> = v.rubric.iter().map(|i| i.score).collect();
        assert!((scores[0] - 0.9).abs() < 1e-6 && (scores[1] - 0.9).abs() < 1e-6);
        assert_eq!(scores[2], 0.0, "not wrapped in quotes");
        let by: Vec<Checker> = v.rubric.iter().map(|i| i.checker()).collect();
        assert_eq!(by, [Checker::Judge, Checker::Judge, Checker::Rules]);
        // (3 * 0.9 + 1 * 0) / 4; the hard item does not count.
        assert!((v.rubric_score.unwrap() - 2.7 / 4.0).abs() < 1e-6);
        // The judge was asked the criterion, or the item's own question.
        assert_eq!(
            *asked.lock().unwrap(),
            ["Surprising ending", "Is the imagery vivid?"]
        );
    }
}
