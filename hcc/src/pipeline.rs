//! The in-process LLVM pipeline for one translation unit: every ISA's module
//! is optimized, instrumented and compiled on its own thread with the same
//! pipeline; between instrumentation and code generation the threads meet so
//! the per-function site tables can be compared (DESIGN.md 3.1). A function
//! whose sites differ across ISAs is left uninstrumented in every variant
//! and the round repeats until all variants agree — it cannot loop forever,
//! because the excluded set only grows.

use crate::instrument;
use crate::instrument::frame::{AgreedFrame, SlotShape};
use crate::instrument::{Agreements, FrameShapes};
use crate::ir::Val;
use hc_metadata::isa::EntryRedirect;
use hc_metadata::sites::{FunctionSites, SiteTable};
use hc_metadata::Isa;
use inkwell::context::Context;
use inkwell::memory_buffer::MemoryBuffer;
use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple,
};
use inkwell::OptimizationLevel;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::Once;

/// `-O` levels as hcc maps them onto LLVM pipelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptLevel {
    O0,
    O1,
    O2,
    O3,
    Os,
    Oz,
}

impl OptLevel {
    pub fn from_flag(v: Option<&str>) -> OptLevel {
        match v {
            None | Some("0") => OptLevel::O0,
            Some("" | "1" | "g") => OptLevel::O1,
            Some("2") => OptLevel::O2,
            Some("3") => OptLevel::O3,
            Some("s") => OptLevel::Os,
            Some("z") => OptLevel::Oz,
            Some(_) => OptLevel::O2,
        }
    }
    fn pipeline(self) -> &'static str {
        match self {
            OptLevel::O0 => "default<O0>",
            OptLevel::O1 => "default<O1>",
            OptLevel::O2 => "default<O2>",
            OptLevel::O3 => "default<O3>",
            OptLevel::Os => "default<Os>",
            OptLevel::Oz => "default<Oz>",
        }
    }
    fn codegen(self) -> OptimizationLevel {
        match self {
            OptLevel::O0 => OptimizationLevel::None,
            OptLevel::O1 => OptimizationLevel::Less,
            OptLevel::O3 => OptimizationLevel::Aggressive,
            _ => OptimizationLevel::Default,
        }
    }
}

/// What compiling one translation unit produced.
pub struct UnitOutput {
    /// One relocatable object per ISA.
    pub objects: BTreeMap<Isa, Vec<u8>>,
    /// The site table every variant agreed on.
    pub sites: SiteTable,
    /// Functions left uninstrumented because the variants disagreed.
    pub mismatches: Vec<(String, String)>,
}

static INIT: Once = Once::new();

/// Registers the targets and LLVM's own options once per process.
pub fn init_llvm() {
    INIT.call_once(|| {
        let cfg = InitializationConfig::default();
        Target::initialize_x86(&cfg);
        Target::initialize_aarch64(&cfg);
        deopt_values_in_registers(true);
    });
}

/// Held while the deopt-value lowering is switched off for a retry.
static DEOPT_LOWERING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether values live across a call stay where the register allocator
/// keeps them (callee-saved registers or its spill slots) instead of being
/// forced to stack slots: with it, the instrumented code is the code the
/// backend would have made. (Not the per-statepoint "deopt live-in" flag:
/// that lets a value sit in a register the callee clobbers.) A process-wide
/// LLVM option; both settings give valid stack maps, so a thread compiling
/// meanwhile may see either.
fn deopt_values_in_registers(on: bool) {
    let opt = if on {
        c"-use-registers-for-deopt-values=true"
    } else {
        c"-use-registers-for-deopt-values=false"
    };
    let args = [c"hcc".as_ptr(), opt.as_ptr()];
    // SAFETY: argv is an array of two NUL-terminated strings that outlive the call.
    unsafe {
        inkwell::llvm_sys::support::LLVMParseCommandLineOptions(
            args.len() as i32,
            args.as_ptr(),
            std::ptr::null(),
        )
    };
}

/// Errors LLVM reports while generating code. Without a handler of its own
/// a context prints them and exits the process.
#[derive(Default)]
struct Diagnostics(std::sync::Mutex<Vec<String>>);

extern "C" fn on_diagnostic(
    info: inkwell::llvm_sys::prelude::LLVMDiagnosticInfoRef,
    ctx: *mut std::ffi::c_void,
) {
    use inkwell::llvm_sys::core::*;
    // SAFETY: `ctx` is the `Diagnostics` installed with this handler, which
    // outlives the context; `info` is valid during the call and the
    // description is a message LLVM allocated for us to dispose.
    unsafe {
        use inkwell::llvm_sys::LLVMDiagnosticSeverity::*;
        let severity = LLVMGetDiagInfoSeverity(info);
        if !matches!(severity, LLVMDSError | LLVMDSWarning) {
            return;
        }
        let p = LLVMGetDiagInfoDescription(info);
        let msg = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        LLVMDisposeMessage(p);
        if severity == LLVMDSWarning {
            eprintln!("warning: {msg}");
            return;
        }
        let d = &*(ctx as *const Diagnostics);
        d.0.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
    }
}

/// Code generation, retried once with deopt values in stack slots when the
/// register allocator gives up on a function (LLVM's greedy allocator does,
/// rarely, with many values live at a statepoint: sqlite3's shell had one).
fn codegen(tm: &TargetMachine, module: &Module, diags: &Diagnostics) -> Result<Vec<u8>, String> {
    let take = || std::mem::take(&mut *diags.0.lock().unwrap_or_else(|e| e.into_inner()));
    let emit = || {
        tm.write_to_memory_buffer(module, FileType::Object)
            .map(|b| b.as_slice().to_vec())
            .map_err(|e| format!("code generation failed: {e}"))
    };
    let earlier = take();
    if !earlier.is_empty() {
        return Err(earlier.join("\n"));
    }
    let out = emit()?;
    let errors = take();
    if errors.is_empty() {
        return Ok(out);
    }
    if !errors.iter().all(|e| e.contains("ran out of registers")) {
        return Err(errors.join("\n"));
    }
    let _held = DEOPT_LOWERING.lock().unwrap_or_else(|e| e.into_inner());
    deopt_values_in_registers(false);
    let out = emit();
    deopt_values_in_registers(true);
    let errors = take();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    out
}

pub fn target_machine(isa: Isa, level: OptLevel) -> Result<TargetMachine, String> {
    init_llvm();
    let info = isa.info();
    // Normalized ("x86_64-unknown-linux-musl"): LLVM reads a triple's parts
    // by position, so "x86_64-linux-musl" as given would make "linux" the
    // vendor and "musl" the OS, and the back end would not know it targets
    // Linux/musl (thread-locals then cost an extra `%fs:0` load each).
    let triple = TargetMachine::normalize_triple(&TargetTriple::create(info.triple));
    let target = Target::from_triple(&triple).map_err(|e| e.to_string())?;
    target
        .create_target_machine(
            &triple,
            info.cpu,
            info.features,
            level.codegen(),
            RelocMode::Static,
            CodeModel::Default,
        )
        .ok_or_else(|| format!("LLVM cannot create a target machine for {}", info.triple))
}

/// What the consensus rounds decided so far (DESIGN.md 3.1).
#[derive(Clone, Default)]
struct Decisions {
    /// Functions left uninstrumented, and agreed frame layouts.
    agreed: Agreements,
    /// Functions kept out of line everywhere.
    noinline: BTreeSet<String>,
}

enum Command {
    /// Again, with these decisions.
    Redo(Decisions),
    Codegen,
    Abort,
}

/// What a compiler thread's panic (a bug of hcc's, printed above it) says.
const INTERNAL_ERROR: &str = "internal error: hcc stopped compiling this file (a bug in hcc: please report it with the source file and the command line)";

/// Compiles one translation unit from each ISA's bitcode.
pub fn compile_unit(
    bitcode: &BTreeMap<Isa, Vec<u8>>,
    source: &str,
    level: OptLevel,
) -> Result<UnitOutput, String> {
    init_llvm();
    let layouts = match bitcode.get(&Isa::PRIMARY) {
        Some(bc) => instrument::byval::struct_layouts(bc)?,
        None => Default::default(),
    };
    let layouts = &layouts;
    std::thread::scope(|scope| {
        let (res_tx, res_rx) = mpsc::channel::<(Isa, Result<Instrumented, String>)>();
        let mut commands = BTreeMap::new();
        let mut workers = Vec::new();
        for (&isa, bc) in bitcode {
            let (tx, rx) = mpsc::channel::<Command>();
            commands.insert(isa, tx);
            let res_tx = res_tx.clone();
            workers.push((
                isa,
                scope.spawn(move || worker(isa, bc, source, level, layouts, rx, res_tx)),
            ));
        }
        drop(res_tx);
        let mut agreed = Agreements::default();
        let mut noinline: BTreeSet<String> = BTreeSet::new();
        let mut mismatches = Vec::new();
        let result: Result<SiteTable, String> = loop {
            let mut tables = BTreeMap::new();
            let mut shapes = BTreeMap::new();
            let mut failure = None;
            for _ in 0..commands.len() {
                match res_rx.recv() {
                    Ok((isa, Ok((t, s)))) => {
                        tables.insert(isa, t);
                        shapes.insert(isa, s);
                    }
                    Ok((isa, Err(e))) => failure = Some(format!("{isa}: {e}")),
                    Err(_) => failure = Some(INTERNAL_ERROR.to_string()),
                }
            }
            if let Some(e) = failure {
                break Err(e);
            }
            let (diffs, widen) = compare(&tables, &shapes, &agreed.frames);
            if diffs.is_empty() && widen.is_empty() {
                break Ok(tables.into_values().next().unwrap_or_default());
            }
            agreed.frames.extend(widen);
            // A callee inlined into a function on one ISA only is kept out of
            // line everywhere (DESIGN.md 3.1); a function that still differs
            // once no such callee is left is not instrumented.
            let fresh: BTreeSet<String> = diffs
                .iter()
                .flat_map(|(sym, _)| one_sided_callees(&tables, sym))
                .filter(|c| !noinline.contains(c))
                .collect();
            if fresh.is_empty() {
                for (sym, why) in diffs {
                    mismatches.push((sym.clone(), why.clone()));
                    agreed.exclude.insert(sym, why);
                }
            } else {
                noinline.extend(fresh);
            }
            for tx in commands.values() {
                let _ = tx.send(Command::Redo(Decisions {
                    agreed: agreed.clone(),
                    noinline: noinline.clone(),
                }));
            }
        };
        let ok = result.is_ok();
        for tx in commands.values() {
            let _ = tx.send(if ok { Command::Codegen } else { Command::Abort });
        }
        let mut objects = BTreeMap::new();
        let mut errors = Vec::new();
        for (isa, h) in workers {
            match h.join() {
                Ok(Ok(Some(obj))) => {
                    objects.insert(isa, obj);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => errors.push(format!("{isa}: {e}")),
                Err(_) => errors.push(format!("{isa}: {INTERNAL_ERROR}")),
            }
        }
        let sites = result?;
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        Ok(UnitOutput {
            objects,
            sites,
            mismatches,
        })
    })
}

/// Direct callees a function calls on some ISAs but not on others (as a
/// multiset): the candidates for having been inlined on one side only.
fn one_sided_callees(tables: &BTreeMap<Isa, SiteTable>, sym: &str) -> Vec<String> {
    let callees = |t: &SiteTable| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for f in t.functions.iter().filter(|f| f.symbol == sym) {
            for s in f.sites.iter().filter(|s| !s.callee.is_empty()) {
                *m.entry(s.callee.clone()).or_insert(0) += 1;
            }
        }
        m
    };
    let all: Vec<BTreeMap<String, usize>> = tables.values().map(callees).collect();
    let names: BTreeSet<&String> = all.iter().flat_map(|m| m.keys()).collect();
    names
        .into_iter()
        .filter(|n| {
            let counts: BTreeSet<usize> = all
                .iter()
                .map(|m| m.get(*n).copied().unwrap_or(0))
                .collect();
            counts.len() > 1
        })
        .cloned()
        .collect()
}

/// What one round of one ISA produced: its site table and frame shapes.
type Instrumented = (SiteTable, FrameShapes);

/// Functions whose instrumentation differs between the ISAs' tables, with
/// why; and, for functions whose stack slots differ only in what they hold,
/// the frame layout to agree on in the next round.
fn compare(
    tables: &BTreeMap<Isa, SiteTable>,
    shapes: &BTreeMap<Isa, FrameShapes>,
    frames: &BTreeMap<String, AgreedFrame>,
) -> (Vec<(String, String)>, BTreeMap<String, AgreedFrame>) {
    let mut out = Vec::new();
    let mut widen = BTreeMap::new();
    let Some((&first_isa, first)) = tables.iter().next() else {
        return (out, widen);
    };
    let no_shapes = FrameShapes::new();
    let shapes_of = |isa: &Isa| shapes.get(isa).unwrap_or(&no_shapes);
    let index = |t: &SiteTable| -> BTreeMap<String, FunctionSites> {
        t.functions
            .iter()
            .map(|f| (f.symbol.clone(), f.clone()))
            .collect()
    };
    let a = index(first);
    for (&isa, t) in tables.iter().skip(1) {
        let b = index(t);
        for (sym, fa) in &a {
            let why = match b.get(sym) {
                None if fa.instrumented => Some(format!(
                    "exists only in the {first_isa} variant after optimization"
                )),
                None => None,
                Some(fb) if fa.instrumented != fb.instrumented => {
                    let (on, off, reason) = if fa.instrumented {
                        (first_isa, isa, &fb.reason)
                    } else {
                        (isa, first_isa, &fa.reason)
                    };
                    // No reason: nothing in it could reach a migration point.
                    Some(if reason.is_empty() {
                        format!(
                            "instrumented for {on} but not for {off}, where optimization left nothing in it that can reach a migration point"
                        )
                    } else {
                        format!("instrumented for {on} but not for {off} ({reason})")
                    })
                }
                Some(fb)
                    if fa.instrumented
                        && (fa.frame != fb.frame
                            || shapes_of(&first_isa).get(sym) != shapes_of(&isa).get(sym)) =>
                {
                    let (sa, sb) = (&shapes_of(&first_isa)[sym], &shapes_of(&isa)[sym]);
                    match frames.get(sym) {
                        None if sa.len() == sb.len() => {
                            widen.insert(sym.clone(), agree_on_frame(sa, sb));
                            None
                        }
                        None => Some(format!(
                            "optimization left {} stack slots for {first_isa} and {} for {isa}",
                            sa.len(),
                            sb.len()
                        )),
                        // At the agreed layout the sites must agree too (a
                        // variadic body carried 5 values at a poll on x86_64
                        // and 4 on aarch64, and nothing compared them).
                        Some(g) if fa.frame == fb.frame && *g == agree_on_frame(sa, sb) => {
                            (fa.sites != fb.sites || fa.record != fb.record)
                                .then(|| describe_site_diff(fa, fb, first_isa, isa))
                        }
                        Some(_) => Some(format!(
                            "stack slots differ between {first_isa} and {isa} even at the agreed layout"
                        )),
                    }
                }
                Some(fb) if fa.sites != fb.sites || fa.record != fb.record => {
                    Some(describe_site_diff(fa, fb, first_isa, isa))
                }
                Some(_) => None,
            };
            if let Some(w) = why {
                out.push((sym.clone(), w));
            }
        }
        for (sym, fb) in &b {
            if fb.instrumented && !a.contains_key(sym) {
                out.push((
                    sym.clone(),
                    format!("exists only in the {isa} variant after optimization"),
                ));
            }
        }
    }
    out.sort();
    out.dedup_by(|x, y| x.0 == y.0);
    (out, widen)
}

/// The layout two variants' slots agree on: each slot as large and as
/// aligned as either has it; slots whose types differ are marked.
fn agree_on_frame(a: &[SlotShape], b: &[SlotShape]) -> AgreedFrame {
    AgreedFrame {
        slots: a
            .iter()
            .zip(b)
            .map(|(x, y)| (x.size.max(y.size), x.align.max(y.align)))
            .collect(),
        differing: a
            .iter()
            .zip(b)
            .enumerate()
            .filter(|(_, (x, y))| x.ty != y.ty || x.size != y.size)
            .map(|(k, _)| k)
            .collect(),
    }
}

fn describe_site_diff(a: &FunctionSites, b: &FunctionSites, ia: Isa, ib: Isa) -> String {
    if a.sites.len() != b.sites.len() {
        return format!(
            "optimization made different code for {ia} ({} sites) and {ib} ({} sites)",
            a.sites.len(),
            b.sites.len()
        );
    }
    let names = |f: &FunctionSites, s: &hc_metadata::sites::Site| {
        s.slots
            .iter()
            .map(|&i| f.record.get(i as usize).map(|t| t.name()).unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(",")
    };
    for (k, (sa, sb)) in a.sites.iter().zip(&b.sites).enumerate() {
        let (na, nb) = (names(a, sa), names(b, sb));
        if sa.kind != sb.kind || sa.callee != sb.callee || na != nb {
            return format!(
                "site {k} differs: {ia} {:?} '{}' [{na}] vs {ib} {:?} '{}' [{nb}]",
                sa.kind, sa.callee, sb.kind, sb.callee
            );
        }
    }
    "the values live at its sites differ".into()
}

fn worker(
    isa: Isa,
    bitcode: &[u8],
    source: &str,
    level: OptLevel,
    layouts: &instrument::byval::StructLayouts,
    commands: mpsc::Receiver<Command>,
    results: mpsc::Sender<(Isa, Result<Instrumented, String>)>,
) -> Result<Option<Vec<u8>>, String> {
    let tm = target_machine(isa, level)?;
    // Every variant is optimized with one cost model (the primary ISA's):
    // loop unrolling, vectorization and inlining then decide alike, so the
    // variants keep the same call sites (DESIGN.md 3.1).
    let opt_tm = target_machine(Isa::PRIMARY, level)?;
    let diags = Diagnostics::default();
    let ctx = Context::create();
    // SAFETY: `diags` outlives `ctx`: declared first, it is dropped last.
    unsafe {
        inkwell::llvm_sys::core::LLVMContextSetDiagnosticHandler(
            ctx.raw(),
            Some(on_diagnostic),
            &diags as *const Diagnostics as *mut std::ffi::c_void,
        )
    };
    let mut decisions = Decisions::default();
    // The optimized module of the last optimization and the noinline set it
    // had: a round that only agrees on frames or excludes functions
    // instruments a copy of it instead of optimizing again (sqlite3.c: 80 s
    // per ISA).
    let mut optimized: Option<(BTreeSet<String>, Module)> = None;
    loop {
        let step = (|| {
            let module = match &optimized {
                Some((noinline, m)) if *noinline == decisions.noinline => clone_module(m),
                _ => {
                    let m = optimize(
                        isa, &ctx, &tm, &opt_tm, bitcode, source, level, layouts, &decisions,
                    )?;
                    optimized = Some((decisions.noinline.clone(), clone_module(&m)));
                    m
                }
            };
            instrument(isa, module, &tm, source, &decisions)
        })();
        let (module, table) = match step {
            Ok(x) => x,
            Err(e) => {
                let _ = results.send((isa, Err(e.clone())));
                return Err(e);
            }
        };
        let _ = results.send((isa, Ok(table)));
        match commands.recv() {
            Ok(Command::Redo(d)) => {
                decisions = d;
            }
            Ok(Command::Codegen) => {
                finish(isa, &module, &tm, source)?;
                let timer = Timer::new(source, &tm);
                let mut buf = codegen(&tm, &module, &diags)?;
                if isa.info().entry_redirect == EntryRedirect::PrefixJump {
                    crate::instrument::poll::widen_entry_pushes(&mut buf)?;
                }
                timer.mark("codegen");
                return Ok(Some(buf));
            }
            Ok(Command::Abort) | Err(_) => return Ok(None),
        }
    }
}

/// A copy of `m`. (inkwell's `clone` verifies the whole module first, which
/// costs sqlite3.c seconds; the optimizer's output is valid.)
fn clone_module<'c>(m: &Module<'c>) -> Module<'c> {
    // SAFETY: `m` is a live module; the copy is a new module in the same
    // context, owned by the returned value.
    unsafe { Module::new(inkwell::llvm_sys::core::LLVMCloneModule(m.as_mut_ptr())) }
}

/// Parses and optimizes one ISA's module.
#[allow(clippy::too_many_arguments)]
fn optimize<'c>(
    isa: Isa,
    ctx: &'c Context,
    tm: &TargetMachine,
    opt_tm: &TargetMachine,
    bitcode: &[u8],
    source: &str,
    level: OptLevel,
    layouts: &instrument::byval::StructLayouts,
    decisions: &Decisions,
) -> Result<Module<'c>, String> {
    let timer = Timer::new(source, tm);
    let buf = MemoryBuffer::create_from_memory_range_copy(bitcode, source);
    let module = Module::parse_bitcode_from_buffer(&buf, ctx).map_err(|e| e.to_string())?;
    instrument::variadic::prototype_calls(&crate::ir::Ctx::new(&module));
    instrument::align::large_arrays(&crate::ir::Ctx::new(&module));
    if !instrument::ablated("variadic-bodies") {
        instrument::variadic::lower(&module, &isa.info().va_list)?;
    }
    instrument::labels::neutralize(&crate::ir::Ctx::new(&module));
    instrument::byval::split_external(&crate::ir::Ctx::new(&module), layouts);
    instrument::byval::pass_by_pointer(&crate::ir::Ctx::new(&module));
    instrument::byval::copy_before_byval_calls(&crate::ir::Ctx::new(&module));
    instrument::byval::coerced_by_pointer(&crate::ir::Ctx::new(&module));
    instrument::byval::returned_by_pointer(&crate::ir::Ctx::new(&module));
    keep_out_of_line(ctx, &module, &decisions.noinline);
    dump_ir(&module, tm, source, "pre");
    timer.mark("parse");
    module.set_triple(&tm.get_triple());
    // The optimizer sees the primary ISA's CPU in every function, so the
    // primary's cost model answers without warnings about foreign features;
    // the variant's own CPU and features are put back for code generation.
    // Likewise the primary's data layout: InstCombine narrows integers only
    // to the layout's native widths (x86_64 n8:16:32:64, aarch64 n32:64), so
    // with each its own the variants' values got different types. All LP64
    // layouts here agree on every size and ABI alignment.
    let saved = impose_target_attributes(ctx, &module, Isa::PRIMARY);
    let own_layout =
        inkwell::targets::TargetData::create(&module.get_data_layout().as_str().to_string_lossy());
    module.set_data_layout(&opt_tm.get_target_data().get_data_layout());
    let opts = PassBuilderOptions::create();
    module
        .run_passes(level.pipeline(), opt_tm, opts)
        .map_err(|e| format!("optimization failed: {e}"))?;
    module.set_data_layout(&own_layout.get_data_layout());
    restore_target_attributes(ctx, &module, saved, isa);
    timer.mark("optimize");
    dump_ir(&module, tm, source, "opt");
    Ok(module)
}

/// Instruments one ISA's optimized module with the round's decisions: as
/// far as the site table needs. SSA repair and verification wait for
/// `finish`, which a round the variants disagree on never reaches
/// (sqlite3.c: 16 s per ISA and discarded round).
fn instrument<'c>(
    isa: Isa,
    module: Module<'c>,
    tm: &TargetMachine,
    source: &str,
    decisions: &Decisions,
) -> Result<(Module<'c>, Instrumented), String> {
    let timer = Timer::new(source, tm);
    // Loops with a preheader, one latch and exits of their own: the shape
    // loop versioning (instrument/version.rs) works on. It adds blocks
    // without calls, so site sequences do not change.
    module
        .run_passes("function(loop-simplify)", tm, PassBuilderOptions::create())
        .map_err(|e| format!("loop-simplify failed: {e}"))?;
    let table = instrument::instrument_module(&module, isa, source, &decisions.agreed);
    timer.mark("instrument");
    dump_ir(&module, tm, source, "raw");
    Ok((module, table))
}

/// Makes the instrumented module ready for code generation: values carried
/// through stack slots back in SSA form, polls patchable, and the IR checked.
fn finish(isa: Isa, module: &Module, tm: &TargetMachine, source: &str) -> Result<(), String> {
    let timer = Timer::new(source, tm);
    module
        .run_passes(
            "function(mem2reg,loop-simplify)",
            tm,
            PassBuilderOptions::create(),
        )
        .map_err(|e| format!("SSA repair after instrumentation failed: {e}"))?;
    timer.mark("ssa-repair");
    init_arrays(module);
    if !instrument::ablated("patched-polls") {
        instrument::poll::make_patchable(&crate::ir::Ctx::new(module), isa);
    }
    dump_ir(module, tm, source, "inst");
    if let Err(e) = module.verify() {
        return Err(format!(
            "internal error: instrumented IR is invalid (please report this with the source file): {}",
            e.to_string()
        ));
    }
    timer.mark("verify");
    Ok(())
}

/// Puts constructors and destructors (`llvm.global_ctors`/`_dtors`) into
/// `.init_array`/`.fini_array` as clang does: a target machine made through
/// LLVM-C keeps LLVM's old default, `.ctors`/`.dtors`, which musl never
/// runs and hld cannot place (`__attribute__((constructor))` failed to
/// link). One pointer-sized entry each, in the list's order, a priority
/// below the default in `.init_array.NNNNN` (ld sorts those first).
fn init_arrays(module: &Module) {
    let cx = crate::ir::Ctx::new(module);
    for (list, section) in [
        ("llvm.global_ctors", ".init_array"),
        ("llvm.global_dtors", ".fini_array"),
    ] {
        let Some(g) = cx.global(list) else {
            continue;
        };
        // Entries are {i32 priority, ptr function, ptr data}.
        let entries: Vec<Val> = g
            .initializer()
            .map(|a| a.operands().collect())
            .unwrap_or_default();
        for (i, e) in entries.into_iter().enumerate() {
            let prio = e.operand(0).const_int_value().unwrap_or(65535);
            let t = cx.constant_table(&format!("hc{list}.{i}"), cx.ptr(), &[e.operand(1)], 8);
            t.set_global_constant(false);
            t.set_section(&if prio < 65535 {
                format!("{section}.{prio:05}")
            } else {
                section.to_string()
            });
        }
        g.delete_global();
    }
}

/// HCC_TIME=1 prints how long each step of the pipeline took, per ISA.
struct Timer {
    on: bool,
    what: String,
    last: std::cell::Cell<std::time::Instant>,
}

impl Timer {
    fn new(source: &str, tm: &TargetMachine) -> Timer {
        let triple = tm.get_triple();
        let arch = triple
            .as_str()
            .to_string_lossy()
            .split('-')
            .next()
            .unwrap_or("")
            .to_string();
        Timer {
            on: std::env::var_os("HCC_TIME").is_some(),
            what: format!("{source} [{arch}]"),
            last: std::cell::Cell::new(std::time::Instant::now()),
        }
    }
    fn mark(&self, step: &str) {
        if self.on {
            let now = std::time::Instant::now();
            eprintln!(
                "hcc: {} {step}: {:.0} ms",
                self.what,
                (now - self.last.get()).as_secs_f64() * 1000.0
            );
            self.last.set(now);
        }
    }
}

/// HCC_DUMP_IR=DIR writes each ISA's IR as it goes to the optimizer
/// (`.pre.ll`, after hcc's ISA-neutral rewrites), after optimization (`.opt.ll`),
/// after instrumentation (`.raw.ll`, values still carried through stack
/// slots) and as it goes to code generation (`.inst.ll`), for debugging hcc
/// itself. A consensus round's files move to `.prev.ll` when the next round
/// writes its own (the first round shows what made a function differ).
fn dump_ir(module: &Module, tm: &TargetMachine, source: &str, stage: &str) {
    if let Some(dir) = std::env::var_os("HCC_DUMP_IR") {
        let stem = std::path::Path::new(source)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        let triple = tm.get_triple();
        let arch = triple.as_str().to_string_lossy();
        let arch = arch.split('-').next().unwrap_or("unknown");
        let dir = std::path::Path::new(&dir);
        let path = dir.join(format!("{stem}.{arch}.{stage}.ll"));
        let _ = std::fs::rename(&path, dir.join(format!("{stem}.{arch}.{stage}.prev.ll")));
        let _ = module.print_to_file(path);
    }
}

type TargetAttrs = Vec<(String, [Option<String>; 3])>;
const TARGET_ATTRS: [&str; 3] = ["target-cpu", "target-features", "tune-cpu"];

/// Sets every function's "target-cpu"/"target-features" to `isa`'s and
/// returns the old values, for `restore_target_attributes`.
fn impose_target_attributes(ctx: &Context, module: &Module, isa: Isa) -> TargetAttrs {
    let info = isa.info();
    let values = [info.cpu, info.features, info.tune_cpu].map(|v| Some(v.to_string()));
    let mut saved = Vec::new();
    for f in module.get_functions() {
        let old = TARGET_ATTRS.map(|k| target_attribute(&f, k));
        if old.iter().all(Option::is_none) {
            continue;
        }
        saved.push((f.get_name().to_string_lossy().into_owned(), old));
        set_target_attributes(ctx, &f, &values);
    }
    saved
}

/// Puts back what `impose_target_attributes` saved. Functions the optimizer
/// made meanwhile (`f.specialized.1`, copied from an `f` that carried the
/// imposed values) get `own`'s: the aarch64 back end warned about an
/// x86-64 CPU and features in gawk's `print_instruction.specialized.1`.
fn restore_target_attributes(ctx: &Context, module: &Module, saved: TargetAttrs, own: Isa) {
    let info = own.info();
    let own_values = [info.cpu, info.features, info.tune_cpu].map(|v| Some(v.to_string()));
    let saved: BTreeMap<String, [Option<String>; 3]> = saved.into_iter().collect();
    for f in module.get_functions() {
        let name = f.get_name().to_string_lossy();
        match saved.get(name.as_ref()) {
            Some(values) => set_target_attributes(ctx, &f, values),
            None if TARGET_ATTRS
                .iter()
                .any(|k| target_attribute(&f, k).is_some()) =>
            {
                set_target_attributes(ctx, &f, &own_values)
            }
            None => {}
        }
    }
}

fn target_attribute(f: &inkwell::values::FunctionValue, k: &str) -> Option<String> {
    f.get_string_attribute(inkwell::attributes::AttributeLoc::Function, k)
        .map(|a| a.get_string_value().to_string_lossy().into_owned())
}

fn set_target_attributes(
    ctx: &Context,
    f: &inkwell::values::FunctionValue,
    values: &[Option<String>; 3],
) {
    use inkwell::attributes::AttributeLoc::Function as F;
    for (k, v) in TARGET_ATTRS.iter().zip(values) {
        f.remove_string_attribute(F, k);
        if let Some(v) = v {
            f.add_attribute(F, ctx.create_string_attribute(k, v));
        }
    }
}

/// Marks the named functions defined in `module` noinline.
fn keep_out_of_line(ctx: &Context, module: &Module, names: &BTreeSet<String>) {
    use inkwell::attributes::{Attribute, AttributeLoc};
    let noinline = Attribute::get_named_enum_kind_id("noinline");
    let always = Attribute::get_named_enum_kind_id("alwaysinline");
    for name in names {
        if let Some(f) = module.get_function(name) {
            if f.count_basic_blocks() > 0 {
                f.remove_enum_attribute(AttributeLoc::Function, always);
                f.add_attribute(
                    AttributeLoc::Function,
                    ctx.create_enum_attribute(noinline, 0),
                );
            }
        }
    }
}
