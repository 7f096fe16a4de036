//! Instrumentation: polls, statepoints with deopt bundles, resume paths and
//! the shadow stack (DESIGN.md 3.2–3.4), run on each ISA's optimized module
//! with identical decisions so every variant gets the same sites.
//!
//! Shape of an instrumented function:
//!
//! ```text
//! hc.entry:   slots for values live at sites (promoted away by mem2reg;
//!             a copy keeps them, its statepoints take the slots)
//!             if (volatile __hc_poll) goto hc.entry.slow          ; cold
//! entry:      shadow frame, original code ...
//!   loop H:   phis; if (volatile __hc_poll) goto H.slow           ; cold
//!   H.body:   ...  site k: statepoint(call) ["deopt"(live values)]
//! hc.entry.slow: rec = __hc_resume_frame(f); rec ? dispatch : migration point
//! hc.dispatch:   switch rec->site: sites outside loops -> hc.resume.k,
//!                sites in loop L -> L's header (enter loops only there)
//! H.slow:        switch __hc_resume_site(): sites in H -> hc.resume.k or an
//!                inner header; default -> migration point, then H.body
//! hc.resume.k:   -> site k, the call re-issued to __hc_resume_enter, which
//!                uses up the record and jumps to the next frame's function
//!                (a poll's path calls __hc_resume_take itself; values
//!                restored above)
//! ```
//! The re-issued call is the site's own call instruction, so a later capture
//! finds the same site; the callee, also in restore mode, resumes likewise.
//!
//! That is the shape of `f.hc.resume`, the copy of `f` only a restore (or a
//! migration request met at entry) runs. `f` itself, the code that runs, has
//! the same sites and statepoints but no resume edges: `hc.entry` forwards
//! the call to the copy (`musttail`) when the poll word is set, and loop
//! polls go straight to the migration point (DESIGN-NOTES "Resume copies").

mod aggregate;
pub mod align;
pub mod byval;
pub mod cfg;
mod dispatch;
pub mod frame;
pub mod labels;
pub mod liveness;
mod neutral;
mod pieces;
pub mod poll;
mod recursion;
mod scanf;
mod setjmp;
mod shadow;
pub mod variadic;
mod version;

use crate::ir::{self, param_index, Block, Builder, Ctx, Ty, Val};
use cfg::Cfg;
use hc_metadata::isa::VaListAbi;
use hc_metadata::sites::{FunctionSites, Site, SiteKind, SiteTable};
use hc_metadata::types::{record_layout, ValueType};
use hc_metadata::Isa;
use inkwell::llvm_sys::{LLVMIntPredicate, LLVMLinkage, LLVMOpcode, LLVMTypeKind};
use liveness::Liveness;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Symbols shared with the in-process runtime (runtime/native/hcrt.h).
pub mod abi {
    pub const POLL: &str = "__hc_poll";
    pub const SSP: &str = "__hc_ssp";
    /// Thread-local: the innermost function that cannot migrate and is
    /// calling out (null: none), so a migration point declines at once.
    pub const UNMIGRATABLE: &str = "__hc_unmigratable";
    pub const MIGRATE_POINT: &str = "__hc_migrate_point";
    pub const RESUME_FRAME: &str = "__hc_resume_frame";
    pub const RESUME_SITE: &str = "__hc_resume_site";
    pub const RESUME_TAKE: &str = "__hc_resume_take";
    pub const RESUME_ENTER: &str = "__hc_resume_enter";
    pub const RESUME_BAD: &str = "__hc_resume_bad";
    pub const ZERO_PAGE: &str = "__hc_zero_page";
    /// The buffer polls write their frame record into, and its size
    /// (hcrt.h `HC_POLL_RECORD_SIZE`): a record that does not fit goes into a
    /// buffer in the function's frame.
    pub const POLL_RECORD: &str = "__hc_poll_record";
    pub const POLL_RECORD_SIZE: usize = 16384;
    /// Set by a poll before it writes its record, cleared by every
    /// migration-point call: still set there means no other poll (a signal
    /// handler's) wrote the shared buffer in between.
    pub const POLL_RECORD_BUSY: &str = "__hc_poll_record_busy";
    /// Size of `__hc_zero_page`: the largest byval argument a re-issued call can pass.
    pub const ZERO_PAGE_SIZE: u64 = 4096;
    /// Offset of the site index in a frame record (after the function address).
    pub const RECORD_SITE_OFFSET: u64 = 8;
    /// Offset of the values in a frame record (after the 16-byte header).
    pub const RECORD_VALUES_OFFSET: u64 = 16;
    /// GC strategy LLVM requires on functions with statepoints.
    pub const GC_STRATEGY: &str = "statepoint-example";
}

/// Parts of the instrumentation `HCC_BENCH_ABLATE` (comma separated)
/// switches off, for `hc-bench parts` to measure what each costs. The
/// result runs the program's own code unchanged but can no longer migrate
/// (from loops, or at all): a measuring instrument, never a build mode.
pub(crate) fn ablated(part: &str) -> bool {
    static PARTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PARTS
        .get_or_init(|| {
            std::env::var("HCC_BENCH_ABLATE")
                .unwrap_or_default()
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .iter()
        .any(|p| p == part)
}

/// libc functions that never call back into program code: calls to them
/// cannot reach a migration point, so they are not sites. (Not the
/// blocking calls hld wraps, `read`, `write` and stdio's reads among them:
/// a program migrates while it waits in one, at the call's site.)
const LEAF_LIBC: &[&str] = &[
    "__errno_location",
    "__h_errno_location",
    "__hc_fstat",
    "__hc_fstatat",
    "__hc_lstat",
    "__hc_stat",
    "__pthread_self",
    "_longjmp",
    "abs",
    "acos",
    "asin",
    "atan",
    "atan2",
    "atan2l",
    "atof",
    "atoi",
    "atol",
    "atoll",
    "calloc",
    "cbrt",
    "cbrtl",
    "ceil",
    "ceill",
    "clock",
    "clock_gettime",
    "close",
    "cos",
    "cosh",
    "cosl",
    "exp",
    "exp2",
    "exp2l",
    "expl",
    "fabs",
    "fabsl",
    "fclose",
    "feof",
    "ferror",
    "fflush",
    "fgetc",
    "fileno",
    "floor",
    "floorl",
    "fmax",
    "fmin",
    "fmod",
    "fmodl",
    "fopen",
    "fputc",
    "fputs",
    "free",
    "frexp",
    "frexpl",
    "fseek",
    "fstat",
    "fstatat",
    "ftell",
    "fwrite",
    "getc",
    "getchar",
    "getenv",
    "getpid",
    "gettimeofday",
    "hypot",
    "hypotl",
    "isalnum",
    "isalpha",
    "isdigit",
    "islower",
    "isspace",
    "isupper",
    "isxdigit",
    "labs",
    "ldexp",
    "ldexpl",
    "llabs",
    "log",
    "log10",
    "log10l",
    "log2",
    "log2l",
    "logl",
    "longjmp",
    "lseek",
    "lstat",
    "malloc",
    "memchr",
    "memcmp",
    "memcpy",
    "memmove",
    "memset",
    "modf",
    "modfl",
    "open",
    "perror",
    "pow",
    "powl",
    "pthread_self",
    "putc",
    "putchar",
    "puts",
    "realloc",
    "remove",
    "rewind",
    "round",
    "roundl",
    "siglongjmp",
    "sin",
    "sinh",
    "sinl",
    "sqrt",
    "sqrtl",
    "stat",
    "strcat",
    "strchr",
    "strcmp",
    "strcpy",
    "strcspn",
    "strdup",
    "strerror",
    "strlen",
    "strncat",
    "strncmp",
    "strncpy",
    "strndup",
    "strpbrk",
    "strrchr",
    "strspn",
    "strstr",
    "strtod",
    "strtof",
    "strtol",
    "strtold",
    "strtoll",
    "strtoul",
    "strtoull",
    "tan",
    "tanh",
    "tanl",
    "time",
    "tolower",
    "toupper",
    "trunc",
    "truncl",
    "ungetc",
    "unlink",
];

fn is_leaf_libc(name: &str) -> bool {
    name.starts_with("__hc_") || LEAF_LIBC.binary_search(&name).is_ok()
}

/// Declarations of the runtime's entry points in one module.
pub struct Runtime {
    pub poll: Val,
    pub ssp: Val,
    pub unmigratable: Val,
    pub migrate_point: Val,
    pub migrate_point_ty: Ty,
    pub resume_frame: Val,
    pub resume_frame_ty: Ty,
    pub resume_site: Val,
    pub resume_site_ty: Ty,
    pub resume_take: Val,
    pub resume_take_ty: Ty,
    /// The stub a re-issued call enters: takes the record and jumps on.
    pub resume_enter: Val,
    pub resume_bad: Val,
    pub resume_bad_ty: Ty,
    pub zero_page: Val,
    pub poll_record: Val,
    pub poll_record_busy: Val,
    pub statepoint: Val,
    pub statepoint_ty: Ty,
    /// This ISA's `va_list` (variadic.rs), and its type as slot shapes
    /// spell it.
    pub va_list: &'static VaListAbi,
    va_list_shape: String,
}

impl Runtime {
    fn declare(cx: &Ctx, isa: Isa) -> Runtime {
        let (i32t, ptr, void) = (cx.i32(), cx.ptr(), cx.void());
        // The migration point takes the address of a buffer holding the
        // frame record of the function it is called from.
        let migrate_point_ty = cx.fn_type(void, &[ptr], false);
        let resume_frame_ty = cx.fn_type(ptr, &[ptr], false);
        let resume_site_ty = cx.fn_type(i32t, &[], false);
        let resume_take_ty = cx.fn_type(ptr, &[], false);
        let resume_bad_ty = cx.fn_type(void, &[ptr, i32t], false);
        let statepoint = cx.intrinsic("llvm.experimental.gc.statepoint", &[ptr]);
        let rt = Runtime {
            poll: cx.declare_global(abi::POLL, i32t, false),
            ssp: cx.declare_global(abi::SSP, ptr, true),
            unmigratable: cx.declare_global(abi::UNMIGRATABLE, ptr, true),
            migrate_point: cx.declare(abi::MIGRATE_POINT, migrate_point_ty),
            migrate_point_ty,
            resume_frame: cx.declare(abi::RESUME_FRAME, resume_frame_ty),
            resume_frame_ty,
            resume_site: cx.declare(abi::RESUME_SITE, resume_site_ty),
            resume_site_ty,
            resume_take: cx.declare(abi::RESUME_TAKE, resume_take_ty),
            resume_take_ty,
            resume_enter: cx.declare(abi::RESUME_ENTER, cx.fn_type(cx.void(), &[], false)),
            resume_bad: cx.declare(abi::RESUME_BAD, resume_bad_ty),
            resume_bad_ty,
            zero_page: cx.declare_global(abi::ZERO_PAGE, cx.i8(), false),
            poll_record: cx.declare_global(abi::POLL_RECORD, cx.i8(), false),
            poll_record_busy: cx.declare_global(abi::POLL_RECORD_BUSY, i32t, false),
            statepoint,
            statepoint_ty: statepoint.function_type(),
            va_list: &isa.info().va_list,
            va_list_shape: isa.info().va_list.ir_type(),
        };
        rt.migrate_point.add_fn_attribute(cx.enum_attr("noinline"));
        rt.resume_bad.add_fn_attribute(cx.enum_attr("noreturn"));
        rt
    }

    /// Whether a stack slot of this shape is a `va_list` of this ISA: a slot
    /// whose layout differs between ISAs that records carry anyway
    /// (variadic.rs).
    fn is_va_list(&self, shape: &frame::SlotShape) -> bool {
        shape.ty == self.va_list_shape
    }
}

/// The blocks of `f` in function order and its CFG over their indices.
pub fn function_cfg(f: Val) -> (Vec<Block>, Cfg) {
    let blocks = f.blocks();
    let index: HashMap<Block, usize> = blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let succs = blocks
        .iter()
        .map(|b| b.successors().iter().map(|s| index[s]).collect())
        .collect();
    (blocks, Cfg::new(succs))
}

/// The record type of a live value, or None if it cannot be carried.
pub fn value_type(ty: Ty) -> Option<ValueType> {
    use LLVMTypeKind::*;
    match ty.kind() {
        LLVMIntegerTypeKind => match ty.int_width() {
            1 => Some(ValueType::I1),
            8 => Some(ValueType::I8),
            16 => Some(ValueType::I16),
            32 => Some(ValueType::I32),
            64 => Some(ValueType::I64),
            _ => None,
        },
        LLVMPointerTypeKind => Some(ValueType::Ptr),
        LLVMFloatTypeKind => Some(ValueType::F32),
        LLVMDoubleTypeKind => Some(ValueType::F64),
        LLVMVectorTypeKind => {
            let e = ty.element();
            let bits = match e.kind() {
                LLVMIntegerTypeKind => e.int_width(),
                LLVMFloatTypeKind => 32,
                LLVMDoubleTypeKind | LLVMPointerTypeKind => 64,
                _ => return None,
            };
            match bits * ty.vector_len() {
                128 => Some(ValueType::V128),
                64 => Some(ValueType::V64),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Liveness of `f` with values in record order: a block's phis by their
/// record types, so both ISAs number them alike (`Liveness::compute_ordered`).
fn record_liveness(cx: &Ctx, f: Val, blocks: &[Block], cfg: &Cfg) -> Liveness {
    Liveness::compute_ordered(f, blocks, cfg, |p| pieces::record_types(cx, p.ty()))
}

/// Why a call is or is not a site.
enum CallClass {
    Site,
    NotSite,
    /// May reach a migration point but cannot be a statepoint (a variadic
    /// callee of the program's own): a site that cannot migrate.
    Lost,
    /// Like `Lost`: its result is a `long double` (see `classify_call`).
    LongDoubleResult,
    /// A setjmp the resume path can repeat (setjmp.rs).
    Setjmp,
    /// The function cannot be instrumented at all: (category, detail).
    Blocker(&'static str, String),
}

/// libc's variadic functions, which never call back into the program.
const LIBC_VARIADIC: &[&str] = &[
    "asprintf", "dprintf", "execl", "execle", "execlp", "fcntl", "fprintf", "fscanf", "ioctl",
    "mq_open", "open", "openat", "prctl", "printf", "scanf", "sem_open", "snprintf", "sprintf",
    "sscanf", "syscall", "syslog", "ulimit",
];

/// Whether `name` is one of libc's variadic functions (no program body).
fn is_libc_variadic(name: &str) -> bool {
    LIBC_VARIADIC.binary_search(&name).is_ok()
}

fn classify_call(call: Val) -> CallClass {
    let callee = call.called_operand();
    if callee.is_inline_asm() {
        return CallClass::NotSite;
    }
    let returns_twice = ir::Ctx::enum_kind("returns_twice");
    if call.has_call_site_enum_attr(ir::FUNCTION_INDEX, returns_twice)
        || (callee.is_function() && callee.has_fn_enum_attr(returns_twice))
    {
        if callee.is_function() && setjmp::is_rearmable(&callee.name()) {
            return CallClass::Setjmp;
        }
        return CallClass::Blocker(
            "setjmp",
            format!("calls '{}', which returns twice", callee.name()),
        );
    }
    if call.is_musttail() {
        return CallClass::Blocker("other", "contains a musttail call".into());
    }
    if callee.is_function() {
        if callee.intrinsic_id() != 0 {
            return CallClass::NotSite;
        }
        // A library callback's frames decline a migration themselves
        // (`mark_library_callbacks`).
        if is_leaf_libc(&callee.name()) || is_callback_libc(&callee.name()) {
            return CallClass::NotSite;
        }
    }
    if ablated("routed-sites")
        && callee.is_function()
        && callee.name().ends_with(variadic::BODY_SUFFIX)
    {
        return CallClass::Lost;
    }
    // A statepoint cannot wrap a variadic call (the verifier rejects it); a
    // frame stopped in such a call cannot migrate.
    if call.called_type().is_vararg_fn() {
        let libc = callee.is_function() && is_libc_variadic(&callee.name());
        return if libc {
            CallClass::NotSite
        } else {
            CallClass::Lost
        };
    }
    if call.num_bundles() > 0 {
        return CallClass::Blocker("other", "contains a call with operand bundles".into());
    }
    // LLVM 22's x86 back end emits a stray `call 0` after a statepoint whose
    // result is an x87 value; aarch64's binary128 result agrees (same site
    // on every ISA).
    if holds_long_double(call.called_type().return_type()) {
        return CallClass::LongDoubleResult;
    }
    CallClass::Site
}

/// Whether a type is or contains a `long double` (x86_fp80, fp128).
fn holds_long_double(ty: Ty) -> bool {
    use LLVMTypeKind::*;
    match ty.kind() {
        LLVMX86_FP80TypeKind | LLVMFP128TypeKind => true,
        LLVMStructTypeKind => ty.struct_elements().into_iter().any(holds_long_double),
        LLVMArrayTypeKind | LLVMVectorTypeKind => holds_long_double(ty.element()),
        _ => false,
    }
}

/// Whether `call` will be a sibling call — compiled to a jump, so its
/// caller's frame is gone while the callee runs — on every ISA: marked `tail`,
/// right before a `ret` of its result, in a function without stack slots,
/// with the caller's calling convention and arguments and result that all
/// travel in registers. Such a call is no site: a capture never finds its
/// caller's frame, and the caller's caller re-issues its own call to the
/// function whose record comes next (`__hc_resume_take`), which is where the
/// sibling call would have gone. (Should a backend still make it a call, the
/// frame has no site there and the migration is refused, not corrupted.)
fn is_sibling_call(f: Val, call: Val, has_slots: bool) -> bool {
    use LLVMTypeKind::*;
    if ablated("sibling-calls") {
        return false;
    }
    if !call.is_tail() || call.called_type().is_vararg_fn() {
        return false;
    }
    if !returns_result(call) {
        return false;
    }
    let cc = |c: u32| if c == ir::CC_FAST { ir::CC_C } else { c };
    if cc(call.call_conv()) != cc(f.function_call_conv()) {
        return false;
    }
    let attr = |n: &str| ir::Ctx::enum_kind(n);
    // Result extension the caller promises must be the callee's too.
    for ext in ["zeroext", "signext", "inreg"] {
        let k = attr(ext);
        let callee = call.called_operand();
        let callee_has = call.has_call_site_enum_attr(0, k)
            || (callee.is_function() && callee.enum_attr_value(0, k).is_some());
        if f.enum_attr_value(0, k).is_some() && !callee_has {
            return false;
        }
    }
    let register_type = |t: Ty| match t.kind() {
        LLVMIntegerTypeKind => t.int_width() <= 64,
        LLVMPointerTypeKind | LLVMFloatTypeKind | LLVMDoubleTypeKind => true,
        _ => false,
    };
    let ret_ty = call.ty();
    if !ret_ty.is_void() && !register_type(ret_ty) {
        return false;
    }
    let abi: Vec<u32> = [
        "byval",
        "sret",
        "inalloca",
        "preallocated",
        "inreg",
        "byref",
    ]
    .iter()
    .map(|n| attr(n))
    .collect();
    let (mut ints, mut floats) = (0, 0);
    for j in 0..call.num_args() {
        let t = call.operand(j).ty();
        if !register_type(t)
            || abi
                .iter()
                .any(|&k| call.has_call_site_enum_attr(param_index(j), k))
        {
            return false;
        }
        if matches!(t.kind(), LLVMFloatTypeKind | LLVMDoubleTypeKind) {
            floats += 1;
        } else {
            ints += 1;
        }
    }
    // x86_64 passes six integer arguments in registers, aarch64 eight.
    if ints > 6 || floats > 8 {
        return false;
    }
    let disabled = f.fn_string_attr("disable-tail-calls").as_deref() == Some("true");
    !has_slots && !disabled
}

/// Whether `call` is followed by the `ret` of its result (or `ret void`):
/// right after it, or in a block holding only that `ret` (and the phi it
/// returns), reached by an unconditional branch — which code generation
/// duplicates into the call's block to make the sibling call (CodeGenPrepare,
/// "dupRetToEnableTailCallOpts").
fn returns_result(call: Val) -> bool {
    let Some(next) = call.next() else {
        return false;
    };
    let is_ret_of = |ret: Val, v: Val| {
        ret.opcode() == Some(LLVMOpcode::LLVMRet)
            && match ret.num_operands() {
                0 => call.ty().is_void(),
                _ => ret.operand(0) == v,
            }
    };
    if next.opcode() == Some(LLVMOpcode::LLVMRet) {
        return is_ret_of(next, call);
    }
    if next.opcode() != Some(LLVMOpcode::LLVMBr) || next.num_operands() != 1 {
        return false;
    }
    let Some(&target) = call.block().successors().first() else {
        return false;
    };
    match target.instructions().as_slice() {
        [ret] => call.ty().is_void() && is_ret_of(*ret, call),
        [phi, ret] if phi.is_phi() => {
            is_ret_of(*ret, *phi)
                && phi
                    .incoming()
                    .iter()
                    .any(|(v, b)| *b == call.block() && *v == call)
        }
        _ => false,
    }
}

/// What the first look at a function found.
struct Plan {
    calls: Vec<Val>,
    /// The function's setjmp call, if any.
    setjmp: Option<Val>,
    /// Calls to the program's own variadic functions.
    lost_calls: u32,
    /// Some call may reach a migration point without being a site.
    calls_unknown: bool,
    /// Calls returning a `long double`: no sites (`classify_call`).
    long_double_results: u32,
    /// Calls left out because a stack slot whose layout differs between
    /// ISAs is still read after them (see `frame`).
    slot_calls: u32,
    loops: usize,
}

/// Why a function is left uninstrumented: (category, detail).
type Blocker = (&'static str, String);

/// Looks at `f`: the calls that are sites, and whether it can be
/// instrumented. `Ok(None)`: nothing in it can reach a migration point.
fn plan(
    cx: &Ctx,
    rt: &Runtime,
    f: Val,
    agreed: Option<&frame::AgreedFrame>,
    point_free: &HashSet<Val>,
) -> (Plan, Option<Blocker>) {
    let mut plan = Plan {
        calls: Vec::new(),
        setjmp: None,
        lost_calls: 0,
        calls_unknown: false,
        long_double_results: 0,
        slot_calls: 0,
        loops: 0,
    };
    let mut blocker: Option<Blocker> = None;
    // The first reason found is the one reported.
    fn block(blocker: &mut Option<Blocker>, b: Blocker) {
        blocker.get_or_insert(b);
    }
    if f.function_type().is_vararg_fn() {
        block(
            &mut blocker,
            (
                "variadic",
                "entry of a variadic function, for calls through pointers (their va_list reads the native stack)".into(),
            ),
        );
    }
    // A call whose every target cannot reach a migration point needs no site.
    let reaches_no_point = |call: Val| {
        recursion::call_targets(call).is_some_and(|t| t.iter().all(|f| point_free.contains(f)))
    };
    let has_slots = f
        .blocks()
        .iter()
        .any(|b| b.instructions().iter().any(|i| i.is_alloca()));
    for b in f.blocks() {
        for i in b.instructions() {
            match i.opcode() {
                Some(LLVMOpcode::LLVMInvoke | LLVMOpcode::LLVMCallBr) => block(
                    &mut blocker,
                    (
                        "exceptions",
                        "contains invoke/callbr (exceptions or asm goto)".into(),
                    ),
                ),
                Some(LLVMOpcode::LLVMCall) => match classify_call(i) {
                    CallClass::Site if is_sibling_call(f, i, has_slots) => {}
                    CallClass::Site | CallClass::LongDoubleResult if reaches_no_point(i) => {}
                    CallClass::Site => plan.calls.push(i),
                    CallClass::NotSite => {}
                    // A call into a variadic function of the program: that
                    // function is not instrumented (its va_list is ISA-specific),
                    // so no migration happens while it runs; its own sites are
                    // counted as lost, not this call.
                    CallClass::Lost => plan.calls_unknown = true,
                    CallClass::LongDoubleResult => {
                        plan.calls_unknown = true;
                        plan.long_double_results += 1;
                    }
                    CallClass::Setjmp if plan.setjmp.is_some() => block(
                        &mut blocker,
                        ("setjmp", "calls setjmp more than once".into()),
                    ),
                    CallClass::Setjmp => plan.setjmp = Some(i),
                    CallClass::Blocker(c, why) => block(&mut blocker, (c, why)),
                },
                _ => {}
            }
        }
    }
    let (blocks, cfg) = function_cfg(f);
    let loops = cfg.loops();
    let heads = cfg.poll_blocks(&loops);
    // Polls: one per loop, one per edge round an irreducible cycle.
    plan.loops = loops.len() + cfg.irreducible_edges().len();
    if blocker.is_some() || (plan.calls.is_empty() && heads.is_empty()) {
        return (plan, blocker);
    }
    // Every site must run either always or never with the setjmp armed.
    if let Some(s) = plan.setjmp {
        let armed = setjmp::Armed::new(&blocks, &cfg, s);
        let points = plan
            .calls
            .iter()
            .copied()
            .chain(heads.iter().filter_map(|&h| blocks[h].first_non_phi()));
        // Points that run both ways carry whether this frame armed the
        // buffer (setjmp.rs "Armed on some paths"), as long as re-arming
        // once restores what a longjmp could find.
        if points.into_iter().any(|p| armed.at(p).is_none()) {
            let live = record_liveness(cx, f, &blocks, &cfg);
            if let Err(why) = setjmp::rearmable_on_some_paths(&blocks, &cfg, &loops, &live, s) {
                block(&mut blocker, ("setjmp", why));
            }
        }
    }
    if blocker.is_some() {
        return (plan, blocker);
    }
    // Every value live at a would-be site must have a record type.
    let live = record_liveness(cx, f, &blocks, &cfg);
    let mut points: Vec<Vec<Val>> = plan.calls.iter().map(|c| live.live_after(*c)).collect();
    points.push(f.params());
    if let Some(s) = plan.setjmp {
        points.push(live.live_after(s));
    }
    for &h in &heads {
        points.push(live.live_at_start(blocks[h]));
    }
    if let Some(v) = points
        .iter()
        .flatten()
        .find(|v| pieces::record_types(cx, v.ty()).is_none())
    {
        let ty = v.ty().print();
        let cat = if ty.contains("x86_fp80") || ty.contains("fp128") {
            "long-double"
        } else {
            "unsupported-value"
        };
        block(
            &mut blocker,
            (
                cat,
                format!("a value of type {ty} is live across a call or loop"),
            ),
        );
    }
    // A stack slot whose type differs between ISAs must hold nothing anyone
    // reads at a site (see `frame`): calls where one does are no sites (a
    // migration waits until the frame has left them); a loop where one does
    // keeps the function out.
    if let Some(g) = agreed {
        let slots = frame::static_allocas(f);
        // `va_list` objects are carried (transform's `va_lists`).
        let differing: Vec<Val> = g
            .differing
            .iter()
            .filter_map(|&k| slots.get(k).copied())
            .filter(|a| !rt.is_va_list(&frame::shape(cx, *a)))
            .collect();
        let live_at = |p: Val| {
            differing
                .iter()
                .find(|a| frame::read_after(**a, &[p], &blocks).is_some())
                .copied()
        };
        let before = plan.calls.len();
        plan.calls.retain(|c| live_at(*c).is_none());
        plan.slot_calls = (before - plan.calls.len()) as u32;
        let in_loop = heads
            .iter()
            .filter_map(|&h| blocks[h].first_non_phi())
            .find_map(live_at);
        if let Some(a) = in_loop {
            block(
                &mut blocker,
                (
                    "isa-specific-slot",
                    format!(
                        "its {} on the stack has a different layout on each ISA and is read after a loop",
                        frame::describe(a)
                    ),
                ),
            );
        }
    }
    (plan, blocker)
}

impl Plan {
    /// The plan's left-out calls, by category, for the site table.
    fn push_lost(&self, lost: &mut Vec<(String, u32)>) {
        if self.lost_calls > 0 {
            lost.push(("varargs-callee".into(), self.lost_calls));
        }
        if self.slot_calls > 0 {
            lost.push(("isa-specific-slot".into(), self.slot_calls));
        }
        if self.long_double_results > 0 {
            lost.push(("long-double-result".into(), self.long_double_results));
        }
    }

    /// Sites the function would have if instrumented (entry poll, loop
    /// polls, calls), plus its calls that can never be sites.
    fn would_be_sites(&self) -> u32 {
        let n = self.calls.len() + self.loops;
        (n + usize::from(n > 0)) as u32
            + self.lost_calls
            + self.slot_calls
            + self.long_double_results
    }
}

/// libc functions that call back into the program (comparators, tree and
/// directory walkers, atexit handlers): a frame of the program under one of
/// them cannot migrate, since the library frame between has no site. Calls
/// to them are no sites; `mark_library_callbacks` names the callee in
/// `__hc_unmigratable` around each.
const CALLBACK_LIBC: &[&str] = &[
    "bsearch",
    "exit",
    "ftw",
    "glob",
    "lfind",
    "lsearch",
    "nftw",
    "pthread_once",
    "qsort",
    "qsort_r",
    "scandir",
    "tdelete",
    "tdestroy",
    "tfind",
    "tsearch",
    "twalk",
];

fn is_callback_libc(name: &str) -> bool {
    CALLBACK_LIBC.binary_search(&name).is_ok()
}

/// Has every direct call of a `CALLBACK_LIBC` function name that function in
/// `__hc_unmigratable` while it runs, as `mark_calls_out` does for a
/// function hcc leaves unmigratable: a comparator's migration point then
/// keeps a request until the sort has returned instead of writing a dump
/// the rewriter would refuse (the whole heap, once per attempt).
fn mark_library_callbacks(cx: &Ctx, rt: &Runtime) {
    for f in cx.functions().into_iter().filter(|f| !f.is_declaration()) {
        mark_calls(cx, rt, f, None, |callee| {
            callee.is_function() && is_callback_libc(&callee.name())
        });
    }
}

/// Wraps the calls of `f` whose callee `wanted` picks in `old =
/// __hc_unmigratable; __hc_unmigratable = marker (the callee if None);
/// call; __hc_unmigratable = old`.
fn mark_calls(cx: &Ctx, rt: &Runtime, f: Val, marker: Option<Val>, wanted: impl Fn(Val) -> bool) {
    let b = Builder::new(cx);
    let calls: Vec<Val> = f
        .blocks()
        .iter()
        .flat_map(|blk| blk.instructions())
        .filter(|i| i.opcode() == Some(LLVMOpcode::LLVMCall) && wanted(i.called_operand()))
        .collect();
    for call in calls {
        b.before(call);
        let outer = b.load(cx.ptr(), rt.unmigratable, "hc.unmigratable");
        b.store(
            marker.unwrap_or_else(|| call.called_operand()),
            rt.unmigratable,
        );
        b.after(call).store(outer, rt.unmigratable);
    }
}

/// Has every call of `f`, a function that cannot migrate, name `f` in
/// `__hc_unmigratable` while it runs (the value before it back after): a
/// migration point reached below then declines at once instead of writing
/// a dump the rewriter would refuse (xz -9: 674 MiB per attempt while its
/// encoder's `lzma_lzma_optimum_normal` was on the stack). A longjmp past
/// `f` is mended by the setjmp it lands at (`setjmp::keep_shadow_stack`).
fn mark_calls_out(cx: &Ctx, rt: &Runtime, f: Val) {
    mark_calls(cx, rt, f, Some(f), |callee| {
        !callee.is_inline_asm() && !callee.name().starts_with("llvm.")
    });
}

/// Gives every function and global a section of its own, as clang's
/// -ffunction-sections/-fdata-sections would (those are code-generator
/// options LLVM-C cannot set), so hld can place each at one address in every
/// variant. Private globals (string literals, constant tables) also get names,
/// and lose `unnamed_addr` so no mergeable-string section pools them.
fn assign_sections(cx: &Ctx) {
    let mut n = 0;
    for g in cx.globals() {
        if g.is_declaration() || g.name().starts_with("llvm.") {
            continue;
        }
        if g.linkage() == LLVMLinkage::LLVMPrivateLinkage {
            let old = g.name();
            let base = if old.is_empty() {
                n += 1;
                format!("anon.{n}")
            } else {
                old.trim_start_matches('.').to_string()
            };
            g.set_name(&format!("hc.{base}"));
            g.set_linkage(LLVMLinkage::LLVMInternalLinkage);
            g.set_unnamed_addr_none();
        }
        if g.section().is_some() {
            continue;
        }
        let prefix = match (
            g.is_thread_local(),
            g.is_global_constant(),
            g.initializer_is_zero(),
        ) {
            (true, _, true) => ".tbss.",
            (true, _, false) => ".tdata.",
            (false, true, _) => ".rodata.",
            (false, false, true) => ".bss.",
            (false, false, false) => ".data.",
        };
        g.set_section(&format!("{prefix}{}", g.name()));
    }
    for f in cx.functions() {
        if !f.is_declaration() && f.section().is_none() {
            f.set_section(&format!(".text.{}", f.name()));
        }
    }
}

/// What consensus across the ISAs decided for a translation unit (DESIGN.md 3.1).
#[derive(Clone, Debug, Default)]
pub struct Agreements {
    /// Functions left uninstrumented, with why.
    pub exclude: BTreeMap<String, String>,
    /// Functions whose stack slots differ between ISAs: the agreed layout.
    pub frames: BTreeMap<String, frame::AgreedFrame>,
}

/// Each instrumented function's static stack slots as this variant has them.
pub type FrameShapes = BTreeMap<String, Vec<frame::SlotShape>>;

/// Instruments every function of `module` the agreements do not exclude and
/// returns the translation unit's site table and its functions' frame shapes.
pub fn instrument_module(
    module: &inkwell::module::Module,
    isa: Isa,
    source: &str,
    agreed: &Agreements,
) -> (SiteTable, FrameShapes) {
    let mut shapes = FrameShapes::new();
    let cx = Ctx::new(module);
    neutral::redirect(&cx);
    scanf::redirect(&cx);
    aggregate::rebuild_at_uses(&cx);
    assign_sections(&cx);
    let rt = Runtime::declare(&cx, isa);
    setjmp::keep_shadow_stack(&cx, &rt);
    mark_library_callbacks(&cx, &rt);
    let mut polled = recursion::needing_entry_polls(&cx);
    let point_free = if ablated("point-free-calls") {
        HashSet::new()
    } else {
        recursion::point_free(&cx, &polled)
    };
    // A function with loops that can return before any loop or call polls
    // at its entry through a redirected entry, no instruction: give every
    // such function one, on a call cycle or not. Its loops reach a
    // migration point anyway, so no call to it becomes a site; and a loop
    // that calls it on every trip then needs no poll of its own (bzip2's
    // block sort around `mainGtU`: 357.8 M -> 351.8 M instructions).
    if !ablated("free-entry-polls") {
        polled.extend(recursion::redirectable(&cx));
    }
    let mut table = SiteTable {
        source: source.to_string(),
        functions: Vec::new(),
    };
    // Every function planned first: a loop need not poll when each trip
    // calls a function that will poll at its entry (`transform`), which
    // only a function without a blocker does. Plans look at each function
    // as it was optimized; instrumenting one changes no other.
    let functions: Vec<Val> = cx
        .functions()
        .into_iter()
        .filter(|f| !f.is_declaration())
        .collect();
    let mut plans: HashMap<Val, (Plan, Option<Blocker>)> = functions
        .iter()
        .map(|&f| {
            let symbol = f.name();
            let (p, mut blocker) = plan(&cx, &rt, f, agreed.frames.get(&symbol), &point_free);
            if let Some(why) = agreed.exclude.get(&symbol) {
                blocker = Some(("isa-mismatch", why.clone()));
            }
            (f, (p, blocker))
        })
        .collect();
    let entry_polled: HashSet<Val> = if ablated("entry-polls") || ablated("polling-callees") {
        HashSet::new()
    } else {
        polled
            .iter()
            .copied()
            .filter(|f| {
                plans
                    .get(f)
                    .is_some_and(|(p, b)| b.is_none() && (!p.calls.is_empty() || p.loops > 0))
            })
            .collect()
    };
    for f in functions {
        let symbol = f.name();
        let section = f.section().unwrap_or_else(|| format!(".text.{symbol}"));
        let mut entry = FunctionSites {
            symbol: symbol.clone(),
            section,
            resume_section: String::new(),
            instrumented: false,
            reason: String::new(),
            frame: Vec::new(),
            record: Vec::new(),
            sites: Vec::new(),
            lost: Vec::new(),
        };
        let (p, blocker) = plans.remove(&f).expect("planned above");
        let would_be = p.would_be_sites();
        match blocker {
            Some((category, detail)) => {
                entry.reason = format!("{category}: {detail}");
                if would_be > 0 {
                    entry.lost.push((category.to_string(), would_be));
                    mark_calls_out(&cx, &rt, f);
                }
            }
            None if p.calls.is_empty() && p.loops == 0 => {
                p.push_lost(&mut entry.lost);
                // Nothing below it can reach a migration point, so its frame
                // is never unwound through: no frame pointer (clang's
                // -fno-omit-frame-pointer costs such leaves three
                // instructions a call).
                if !p.calls_unknown {
                    cx.set_fn_string_attr(f, "frame-pointer", "none");
                }
            }
            None => {
                p.push_lost(&mut entry.lost);
                let frame = agreed.frames.get(&symbol);
                // The resume paths go into a copy of the function, so its own
                // code has no resume edges: they join every site and loop
                // header, and the phis they bring made the register allocator
                // spill and copy all over big loops (DESIGN-NOTES "Resume
                // copies"). Variadic functions cannot forward their arguments.
                // (Ablated entry polls leave no way in to resume paths.)
                let copy = if f.function_type().is_vararg_fn()
                    || ablated("resume-copies")
                    || ablated("entry-polls")
                {
                    None
                } else {
                    cx.clone_function(f, &format!("{symbol}.hc.resume"))
                };
                let t = match copy {
                    None => transform(&cx, &rt, f, p, frame, Resume::Here, &entry_polled),
                    Some(copy) => {
                        entry.resume_section = format!("{}.hc.resume", entry.section);
                        copy.set_section(&entry.resume_section);
                        // Only a restore or a refused migration runs the
                        // copy: make it small (the back end picks shorter
                        // sequences; sites and values stay the statepoints').
                        if !copy.has_fn_enum_attr(Ctx::enum_kind("optnone")) {
                            copy.add_fn_attribute(cx.enum_attr("optsize"));
                            copy.add_fn_attribute(cx.enum_attr("minsize"));
                        }
                        let (pc, blocker) = plan(&cx, &rt, copy, frame, &point_free);
                        assert!(blocker.is_none(), "a copy plans like its original");
                        let tc = transform(&cx, &rt, copy, pc, frame, Resume::Copy, &entry_polled);
                        let entry_poll = polled.contains(&f) || ablated("entry-poll-pruning");
                        // An entry poll is a redirected entry (FORMATS §5), no
                        // instruction in the code that runs, in a function
                        // without loops, whose entry is a good part of its
                        // work. A function with loops keeps the poll: there
                        // it costs little, and the changed entry moved the
                        // register allocation of sqlite3VdbeExec (+11.6 M).
                        // So does one with loops that can return before any
                        // loop or call (`poll::returns_early`): many of its
                        // calls are short. Lua 443.66 M -> 442.44 M, sqlite3
                        // 311.73 M -> 311.44 M; every entry: sqlite3 327.87 M.
                        let redirect = entry_poll
                            && (p.loops == 0 || poll::returns_early(f))
                            && !ablated("entry-redirects");
                        let poll = entry_poll && !redirect;
                        let t = transform(
                            &cx,
                            &rt,
                            f,
                            p,
                            frame,
                            Resume::In { copy, poll },
                            &entry_polled,
                        );
                        // A redirected entry's listing (and on x86_64 its
                        // prefix) refers to the copy; other functions get a
                        // reference of their own (`keep_with`; at the entry of
                        // a redirected one it would be what LLVM puts a `nop`
                        // before, having no instruction to make longer).
                        if redirect {
                            poll::redirect_entry(&cx, isa, f, copy);
                        } else {
                            poll::keep_with(&cx, f, copy);
                        }
                        assert!(
                            t.sites == tc.sites && t.record == tc.record && t.frame == tc.frame,
                            "internal error: {symbol} and its resume copy differ in sites"
                        );
                        t
                    }
                };
                shapes.insert(symbol.clone(), t.shapes);
                entry.instrumented = true;
                entry.sites = t.sites;
                entry.record = t.record;
                entry.frame = t.frame;
            }
        }
        table.functions.push(entry);
    }
    // Tables made on the way (resume copies' and label tables) get sections
    // of their own too: in the shared `.rodata`, whose contents differ per
    // ISA, they would not be at one address in every variant.
    assign_sections(&cx);
    (table, shapes)
}

/// Functions returning addresses that belong to one process and ISA (the
/// thread's own pthread and errno): their results are recomputed on resume.
const PROCESS_LOCAL_CALLS: &[&str] = &[
    "__errno_location",
    "__h_errno_location",
    "__pthread_self",
    "pthread_self",
];

/// Whether a live value is recomputed on resume instead of carried in the
/// frame record: shadow-stack addresses (a fixed offset from the frame, which
/// is carried: `Some(Some(frame))`), and addresses that differ between
/// processes — TLS variables and errno (`Some(None)`) — and constant offsets
/// from those.
fn recomputable(v: Val, shadow: &shadow::ShadowFrame, depth: u32) -> Option<Option<Val>> {
    if depth > 8 || !v.is_instruction() {
        return None;
    }
    if let Some(&(frame, _)) = shadow.slots.get(&v) {
        return Some(Some(frame));
    }
    match v.opcode()? {
        LLVMOpcode::LLVMCall => {
            let callee = v.called_operand();
            let name = callee.name();
            let ok = callee.is_function()
                && (name.starts_with("llvm.threadlocal.address")
                    || PROCESS_LOCAL_CALLS.contains(&name.as_str()))
                && (0..v.num_args()).all(|i| v.operand(i).is_constant());
            ok.then_some(None)
        }
        // A load from a constant global (`stderr`, a `static const`
        // table's entry at a constant index): the same at every site, on
        // every ISA. Carried, it was made again (`movq stderr, %r15`)
        // before every call it was live across (bzip2's block sort).
        LLVMOpcode::LLVMLoad => {
            let mut g = v.operand(0);
            while g.is_constant() && g.any_opcode() == Some(LLVMOpcode::LLVMGetElementPtr) {
                g = g.operand(0);
            }
            let ok = g.is_global_variable()
                && g.is_global_constant()
                && !g.is_thread_local()
                && !v.is_volatile()
                && !v.is_atomic();
            ok.then_some(None)
        }
        // An element of an aggregate argument: the argument is carried
        // instead, so a parameter coerced to `[2 x i64]` on one ISA and
        // passed as two `i64` on another takes the same record pieces.
        LLVMOpcode::LLVMExtractValue if v.operand(0).is_argument() => Some(Some(v.operand(0))),
        // A constant offset from one other value: that value is carried
        // and this one recomputed, so a loop's many field addresses (`p->a`,
        // `p->b`, ... hoisted out by LICM) take no deopt operand each and stay
        // free for codegen to fold into addressing modes (sqlite3VdbeExec had
        // 90 values live at its sites). Integer casts and arithmetic are not
        // recomputed here: InstCombine shapes them per ISA (shell.c's
        // re_sql_func then carried different values on x86_64 and aarch64);
        // only from a value live at the same site (`derived_from_live`).
        LLVMOpcode::LLVMGetElementPtr | LLVMOpcode::LLVMBitCast | LLVMOpcode::LLVMAddrSpaceCast => {
            let base = v.operand(0);
            if !(1..v.num_operands()).all(|i| v.operand(i).is_constant()) || !base.is_register() {
                return None;
            }
            Some(recomputable(base, shadow, depth + 1).unwrap_or(Some(base)))
        }
        _ => None,
    }
}

/// A comparison with a constant, an integer cast, or integer arithmetic
/// with a constant, of a value live at the same site (`db->enc ==
/// SQLITE_UTF8`, `i + 1`): recomputed on resume from that value, which is
/// carried anyway, instead of taking a deopt operand of its own. A
/// comparison as one was made again (`cmp; setcc` into a stack slot)
/// before every call it was live across (sqlite3VdbeExec: 996 of its 8548
/// deopt operands). Only when the operand is live there too, so the record
/// loses an entry and gains none: an ISA whose optimizer shaped the value
/// otherwise still carries the same values or fails consensus as before
/// (without that condition, casts and arithmetic made shell.c's
/// `re_sql_func` carry different values per ISA: `recomputable`).
fn derived_from_live(
    v: Val,
    live: &HashSet<Val>,
    shadow: &shadow::ShadowFrame,
) -> Option<Option<Val>> {
    use LLVMOpcode::*;
    let op = v.opcode()?;
    let cast = matches!(op, LLVMZExt | LLVMSExt | LLVMTrunc);
    let binop = matches!(
        op,
        LLVMAdd | LLVMSub | LLVMAnd | LLVMOr | LLVMXor | LLVMShl | LLVMLShr | LLVMAShr
    );
    if ablated("derived-from-live") || !(op == LLVMICmp || cast || binop) {
        return None;
    }
    let x = v.operand(0);
    if (!cast && !v.operand(1).is_constant()) || !x.is_register() || !live.contains(&x) {
        return None;
    }
    Some(recomputable(x, shadow, 1).unwrap_or(Some(x)))
}

/// Emits, at the builder, the recomputation of a `recomputable` value.
/// `bases` maps each recomputed address computation to its base as it was
/// before demotion rewrote operands.
fn recompute(
    cx: &Ctx,
    b: &Builder,
    v: Val,
    shadow: &shadow::ShadowFrame,
    bases: &HashMap<Val, Val>,
    done: &mut HashMap<Val, Val>,
) -> Val {
    if let Some(x) = done.get(&v) {
        return *x;
    }
    let x = if let Some(&(frame, off)) = shadow.slots.get(&v) {
        let frame = done[&frame];
        b.gep_i8(cx, frame, cx.const_int(cx.i64(), off), "")
    } else {
        let base = bases
            .get(&v)
            .map(|&o| recompute(cx, b, o, shadow, bases, done));
        let c = v.clone_inst();
        b.insert(c);
        if let Some(base) = base {
            c.set_operand(0, base);
        }
        c
    };
    done.insert(v, x);
    x
}

/// Replaces a poll's conditional branch with a branch to `to`, and erases
/// the poll (its compare and volatile load) with it.
fn erase_poll(b: &Builder, br: Val, to: Block) {
    let c = br.operand(0);
    let block = br.block();
    // Erased first, then replaced at the end of the block: debug records
    // before the old branch go to the new one (with the poll's load and
    // compare between them they did anyway; without, as when
    // `HCC_BENCH_ABLATE=loop-polls` leaves a constant, they were left
    // trailing, which the verifier rejects).
    br.erase();
    if c.is_instruction() {
        let load = c.operand(0);
        c.erase();
        load.erase();
    }
    b.at_end(block);
    b.br(to);
}

/// Headers of polled loops whose every iteration passes the poll of an
/// inner loop: a polled inner header (itself kept) dominates each latch, so
/// going round the outer loop polls at least once anyway. Innermost first,
/// so an inner loop counts only if its own poll stays. Also `through_table`
/// (dispatch headers: every pass through one goes on through a trampoline,
/// so they cover outer loops like a poll of their own) and `not_covering`
/// (polled by their calls on every way round, which says nothing of a pass
/// that leaves the loop at once).
fn redundant_loop_polls(
    cfg: &cfg::Cfg,
    loops: &[cfg::Loop],
    blocks: &[Block],
    unpolled: &HashSet<Block>,
    through_table: &HashSet<Block>,
    not_covering: &HashSet<Block>,
) -> HashSet<Block> {
    let mut spare = HashSet::new();
    let mut kept: Vec<usize> = Vec::new();
    for l in loops.iter().rev() {
        let h = l.header;
        if unpolled.contains(&blocks[h]) {
            continue;
        }
        if not_covering.contains(&blocks[h]) {
            spare.insert(blocks[h]);
            continue;
        }
        if through_table.contains(&blocks[h]) {
            spare.insert(blocks[h]);
            kept.push(h);
            continue;
        }
        let latches: Vec<usize> = cfg.preds[h]
            .iter()
            .copied()
            .filter(|p| l.blocks.binary_search(p).is_ok())
            .collect();
        let covered = kept.iter().any(|&i| {
            i != h
                && l.blocks.binary_search(&i).is_ok()
                && latches.iter().all(|&x| cfg.dominates(i, x))
        });
        if covered {
            spare.insert(blocks[h]);
        } else {
            kept.push(h);
        }
    }
    spare
}

/// Headers of the loops (among `candidates`) where every way round calls a
/// function that polls at its entry (`entry_polled`, every possible
/// target of the call): each trip reaches a migration point there, so the
/// header needs no poll of its own in `f` (the copy keeps it for its
/// restore dispatch).
fn call_covered_loops(
    cfg: &cfg::Cfg,
    loops: &[cfg::Loop],
    blocks: &[Block],
    candidates: impl Fn(Block) -> bool,
    entry_polled: &HashSet<Val>,
) -> HashSet<Block> {
    let calls_poller: Vec<bool> = blocks
        .iter()
        .map(|b| {
            b.instructions().into_iter().any(|i| {
                i.opcode() == Some(LLVMOpcode::LLVMCall)
                    && recursion::call_targets(i).is_some_and(|t| {
                        !t.is_empty() && t.iter().all(|g| entry_polled.contains(g))
                    })
            })
        })
        .collect();
    let mut out = HashSet::new();
    for l in loops.iter().filter(|l| candidates(blocks[l.header])) {
        let h = l.header;
        let inside = |x: &usize| l.blocks.binary_search(x).is_ok();
        // Round to the header from its successors, avoiding such calls.
        let mut seen = HashSet::new();
        let mut work: Vec<usize> = cfg.succs[h].iter().copied().filter(inside).collect();
        let mut round = false;
        while let Some(x) = work.pop() {
            if x == h {
                round = true;
                break;
            }
            if seen.insert(x) && !calls_poller[x] {
                work.extend(cfg.succs[x].iter().copied().filter(inside));
            }
        }
        if calls_poller[h] || !round {
            out.insert(blocks[h]);
        }
    }
    out
}

/// IR instructions of the largest function whose loops may leave their
/// polls to the functions they call (`transform`).
const MAX_COVERED_SIZE: usize = 4000;

/// One site during the transformation.
struct SiteWork {
    call: Val,
    kind: SiteKind,
    callee: String,
    /// Values carried in the frame record, canonical order.
    carried: Vec<Val>,
    /// Values recomputed on resume instead (shadow-stack addresses, TLS,
    /// elements of aggregate arguments).
    derived: Vec<Val>,
    /// Pointers to `va_list` objects the record carries (`ValueType::VaList`):
    /// `None` the body's `va_list` parameter, `Some(k)` static slot `k`.
    va_lists: Vec<(Option<usize>, Val)>,
}

/// What instrumenting a function produced, for its site table entry.
struct Transformed {
    sites: Vec<Site>,
    record: Vec<ValueType>,
    frame: Vec<(u64, u64)>,
    shapes: Vec<frame::SlotShape>,
}

/// Moves `v` into stack slot `sl`: stored where it is defined (an argument
/// before `arg_point`), loaded at each use.
fn demote(b: &Builder, v: Val, sl: Val, arg_point: Val) {
    let uses = v.uses();
    if v.is_argument() {
        b.before(arg_point);
    } else if v.is_phi() {
        b.at_start(v.block());
    } else {
        b.after(v);
    }
    b.store(v, sl);
    // A phi takes one value per predecessor block, however many edges
    // (switch cases) come from it: one load per block.
    let mut at_end: HashMap<(Val, Val), Val> = HashMap::new();
    for (user, idx) in uses {
        let point = ir::use_point(user, idx);
        let l = *at_end.entry((user, point)).or_insert_with(|| {
            b.before(point);
            b.load(v.ty(), sl, "")
        });
        user.set_operand(idx, l);
    }
}

/// Carried (site, value) pairs from which a resume copy keeps its values
/// in their slots (`transform`), and the most uses of those slots per pair
/// it may have. Measured on sqlite3.c's and bzip2's copies (2026-12-03):
/// the copies' code grew below 32 pairs and above 2 uses per pair, it
/// shrank otherwise (sqlite3VdbeExec's copy by a quarter); with both
/// bounds the copies are 10.4% smaller, 10.9% if each function took the
/// better form.
const MIN_SLOT_JOINS: usize = 32;
const MAX_LOADS_PER_JOIN: usize = 2;

/// Where an instrumented function's resume paths are (DESIGN-NOTES
/// "Resume copies").
#[derive(Clone, Copy)]
enum Resume {
    /// In the function itself, which has no copy.
    Here,
    /// In the function itself, a copy: values live at its sites stay in
    /// their stack slots, which its statepoints take (FORMATS §4 v5).
    Copy,
    /// In this copy, which restores enter directly (frame records name it),
    /// so the function's own code has no resume edges joining it. With
    /// `poll`, a migration request met at entry forwards the call there;
    /// without, the function has no entry poll (recursion.rs).
    In { copy: Val, poll: bool },
}

/// Instruments `f` as `plan` says. `entry_polled`: the module's functions
/// that will poll at their entry (a loop calling one on every way round
/// needs no poll of its own).
fn transform(
    cx: &Ctx,
    rt: &Runtime,
    f: Val,
    plan: Plan,
    agreed: Option<&frame::AgreedFrame>,
    resume: Resume,
    entry_polled: &HashSet<Val>,
) -> Transformed {
    let b = Builder::new(cx);
    // Frame records name the function a restore enters: `f` itself.
    let here = matches!(resume, Resume::Here | Resume::Copy);
    let (i32t, ptr) = (cx.i32(), cx.ptr());
    let prof = cx.md_kind("prof");
    let cold = cx.branch_weights(1, 2000);
    let shadow = shadow::apply(cx, rt, f, &plan.calls, agreed);

    // --- Entry poll and the restore dispatch. ---
    let old_entry = f.entry();
    let hc_entry = cx.insert_block_before(old_entry, "hc.entry");
    let entry_slow = cx.append_block(f, "hc.entry.slow");
    let entry_mp = cx.append_block(f, "hc.entry.mp");
    let dispatch = cx.append_block(f, "hc.dispatch");
    let bad = cx.append_block(f, "hc.resume.bad");
    b.at_end(hc_entry);
    // Ablated, the poll and with it the restore dispatch and every resume
    // path are dead code the optimizer removes.
    let c = if ablated("entry-polls") {
        cx.const_int(cx.i1(), 0)
    } else {
        let p = b.volatile_load(i32t, rt.poll, "hc.poll");
        b.icmp(LLVMIntPredicate::LLVMIntNE, p, cx.null(i32t), "")
    };
    let entry_branch = b.cond_br(c, entry_slow, old_entry);
    entry_branch.set_metadata(prof, cold);
    // Stack objects left in the native frame stay static allocas of the
    // new entry, so resume paths (which skip the old one) have them too.
    for a in frame::static_allocas_in(old_entry) {
        a.remove_from_parent();
        b.before(entry_branch);
        b.insert(a);
    }
    b.at_end(entry_slow);
    let rec = b.call(rt.resume_frame_ty, rt.resume_frame, &[f], "hc.rec");
    let isnull = b.icmp(LLVMIntPredicate::LLVMIntEQ, rec, cx.null(ptr), "");
    b.cond_br(isnull, entry_mp, dispatch);
    b.at_end(entry_mp);
    let entry_mp_call = b.call(rt.migrate_point_ty, rt.migrate_point, &[cx.null(ptr)], "");
    entry_mp_call.set_call_conv(ir::CC_PRESERVE_ALL);
    b.br(old_entry);
    b.at_end(dispatch);
    // The site index a frame record names, at the builder.
    let site_of = |rec: Val| {
        let at = b.gep_i8(cx, rec, cx.const_int(cx.i64(), abi::RECORD_SITE_OFFSET), "");
        b.load(i32t, at, "hc.site")
    };
    let site_idx = match resume {
        Resume::Here | Resume::Copy => site_of(rec),
        Resume::In { .. } => {
            b.unreachable();
            cx.null(i32t)
        }
    };
    // Reached from every dispatch switch: asks the runtime for the site.
    if here {
        b.at_end(bad);
        let current = b.call(rt.resume_site_ty, rt.resume_site, &[], "");
        b.call(rt.resume_bad_ty, rt.resume_bad, &[f, current], "");
        b.unreachable();
    } else {
        bad.delete();
    }

    // --- Loop-header polls, except in poll-free copies of short loops. ---
    let unpolled = if ablated("loop-versioning") {
        HashSet::new()
    } else {
        let sites: HashSet<Val> = plan.calls.iter().copied().collect();
        version::version_loops(cx, f, !ablated("loop-unrolling"), &sites)
    };
    // Dispatch loops of computed gotos poll on the way to each label, when
    // the runtime swaps their table (dispatch.rs); `f`'s header then has
    // no poll of its own, its copy's keeps one (its restores go through it).
    let dispatches: Vec<dispatch::Dispatch> = if ablated("table-polls") {
        Vec::new()
    } else {
        let (blocks, cfg) = function_cfg(f);
        let found: Vec<(Block, Val)> = cfg
            .loops()
            .iter()
            .filter(|l| !unpolled.contains(&blocks[l.header]))
            .filter_map(|l| {
                let h = blocks[l.header];
                dispatch::table_of(f, h).map(|t| (h, t))
            })
            .collect();
        found
            .into_iter()
            .map(|(h, t)| dispatch::add_trampolines(cx, f, h, t))
            .collect()
    };
    let dispatch_headers: HashSet<Block> = if here {
        HashSet::new()
    } else {
        for d in &dispatches {
            dispatch::poll_tables(cx, f, d);
        }
        dispatches.iter().map(|d| d.header).collect()
    };
    // Cycles that are no natural loop poll on the edges that go round them
    // (at the cycle's entry when an edge cannot take a block).
    let cycle_polls: Vec<Block> = {
        let (blocks, cfg) = function_cfg(f);
        cfg.irreducible_edges()
            .into_iter()
            .map(|(a, b)| ir::split_edge(cx, blocks[a], blocks[b], "hc.cycle").unwrap_or(blocks[b]))
            .collect()
    };
    let (blocks, cfg) = function_cfg(f);
    let loops = cfg.loops();
    let mut header_switch: HashMap<Block, (Val, Block)> = HashMap::new();
    let mut loop_mps = HashSet::new();
    let mut polled = HashSet::new();
    // Loop polls `f` can do without (its copy keeps them all: its restore
    // dispatch goes through every header): (header's branch, mp block, body).
    let mut redundant: Vec<(Val, Block, Block)> = Vec::new();
    // Headers `f` need not poll at, which cover no outer loop either
    // (`call_covered_loops`). Not in the largest functions, whose register
    // allocation any poll re-draws (`sqlite3VdbeExec`: +13 M instructions
    // with some of its loops' polls gone).
    let small = || {
        f.blocks()
            .iter()
            .map(|b| b.instructions().len())
            .sum::<usize>()
            <= MAX_COVERED_SIZE
    };
    let not_covering = if !here && small() {
        let candidates = |h: Block| !unpolled.contains(&h) && !dispatch_headers.contains(&h);
        call_covered_loops(&cfg, &loops, &blocks, candidates, entry_polled)
    } else {
        HashSet::new()
    };
    let spare = if here {
        HashSet::new()
    } else if ablated("redundant-loop-polls") {
        not_covering.union(&dispatch_headers).copied().collect()
    } else {
        redundant_loop_polls(
            &cfg,
            &loops,
            &blocks,
            &unpolled,
            &dispatch_headers,
            &not_covering,
        )
    };
    let poll_blocks = loops
        .iter()
        .map(|l| blocks[l.header])
        .chain(cycle_polls)
        .chain(
            dispatches
                .iter()
                .flat_map(|d| d.trampolines.iter().map(|t| t.1)),
        );
    for h in poll_blocks {
        if unpolled.contains(&h) || !polled.insert(h) {
            continue;
        }
        let first = h.first_non_phi().expect("blocks end in a terminator");
        let body = ir::split_before(cx, first, "hc.body");
        h.terminator().expect("split left a branch").erase();
        let mp = cx.append_block(f, "hc.loop.mp");
        b.at_end(h);
        let c = if ablated("loop-polls") {
            cx.const_int(cx.i1(), 0)
        } else {
            let p = b.volatile_load(i32t, rt.poll, "hc.poll");
            b.icmp(LLVMIntPredicate::LLVMIntNE, p, cx.null(i32t), "")
        };
        // Without resume paths here, the slow path is the migration point.
        if here {
            let slow = cx.append_block(f, "hc.loop.slow");
            b.cond_br(c, slow, body).set_metadata(prof, cold);
            b.at_end(slow);
            let t = b.call(rt.resume_site_ty, rt.resume_site, &[], "hc.resume.site");
            header_switch.insert(h, (b.switch(t, mp, &[]), slow));
        } else {
            let br = b.cond_br(c, mp, body);
            br.set_metadata(prof, cold);
            if spare.contains(&h) {
                redundant.push((br, mp, body));
            }
        }
        b.at_end(mp);
        let mp_call = b.call(rt.migrate_point_ty, rt.migrate_point, &[cx.null(ptr)], "");
        mp_call.set_call_conv(ir::CC_PRESERVE_ALL);
        b.br(body);
        loop_mps.insert(mp_call);
    }

    // --- setjmp: what follows it starts a block, which the resume paths
    // that re-arm it also reach, with the re-armed call's result. ---
    let setjmp = plan.setjmp.map(|call| {
        let args: Vec<Val> = (0..call.num_args()).map(|j| call.operand(j)).collect();
        let next = call.next().expect("a call is not a terminator");
        // Uses taken after the split: it rebuilds the phis of the block's
        // successors, and the setjmp's result may be one's incoming value.
        let cont = ir::split_before(cx, next, "hc.setjmp.cont");
        let uses = call.uses();
        b.at_start(cont);
        let result = b.phi(call.ty(), "hc.setjmp");
        for (user, idx) in uses {
            user.set_operand(idx, result);
        }
        result.add_incoming(call, call.block());
        (call, args, cont)
    });
    // The phi's `Val` does not outlive the splits below: a site before the
    // setjmp in its block moves it, and moving rebuilds `cont`'s phis.
    let setjmp_result = |call: Val, cont: Block| {
        cont.phis()
            .into_iter()
            .find(|p| p.incoming().iter().any(|(v, _)| *v == call))
            .expect("the setjmp's result phi is in its continuation")
    };

    // --- A setjmp armed on some paths only (setjmp.rs): a slot with the
    // flag, 0 at entry and 1 once the setjmp returned, and slots for the
    // values live after it that do not exist everywhere the flag matters;
    // every record carries them all: (slot, type). ---
    let mut in_memory: Vec<(Val, Ty)> = Vec::new();
    let mut memory_slot: HashMap<Val, Val> = HashMap::new();
    let mut armed_flag: Option<Val> = None;
    if let Some((call, ..)) = &setjmp {
        let (blocks, cfg) = function_cfg(f);
        let armed = setjmp::Armed::new(&blocks, &cfg, *call);
        let ambiguous: Vec<Val> = plan
            .calls
            .iter()
            .chain(loop_mps.iter())
            .copied()
            .filter(|p| armed.at(*p).is_none())
            .collect();
        if !ambiguous.is_empty() {
            let live = record_liveness(cx, f, &blocks, &cfg);
            let values = setjmp::memory_carried(&blocks, &cfg, &live, *call, &ambiguous);
            b.before(hc_entry.first().expect("hc.entry has the poll"));
            let flag = b.alloca(cx.i8(), "hc.armed");
            for &v in &values {
                memory_slot.insert(v, b.alloca(v.ty(), "hc.armed.value"));
            }
            b.store(cx.const_int(cx.i8(), 0), flag);
            b.after(*call).store(cx.const_int(cx.i8(), 1), flag);
            in_memory.push((flag, cx.i8()));
            for &v in &values {
                // (No argument: an argument exists at every point.)
                demote(&b, v, memory_slot[&v], v);
                in_memory.push((memory_slot[&v], v.ty()));
            }
            armed_flag = Some(flag);
        }
    }

    // --- Each call site starts its own block, so the resume path can jump to it. ---
    let plan_calls: HashSet<Val> = plan.calls.iter().copied().collect();
    for &call in &plan.calls {
        ir::split_before(cx, call, "hc.site");
    }

    // --- Number the sites: the entry poll first, then in block order. ---
    let mut sites = vec![SiteWork {
        call: entry_mp_call,
        kind: SiteKind::EntryPoll,
        callee: String::new(),
        carried: Vec::new(),
        derived: Vec::new(),
        va_lists: Vec::new(),
    }];
    for blk in f.blocks() {
        for i in blk.instructions() {
            let kind = if plan_calls.contains(&i) {
                SiteKind::Call
            } else if loop_mps.contains(&i) {
                SiteKind::LoopPoll
            } else {
                continue;
            };
            let callee = i.called_operand();
            let callee = if kind == SiteKind::Call && callee.is_function() {
                callee.name()
            } else {
                String::new()
            };
            sites.push(SiteWork {
                call: i,
                kind,
                callee,
                carried: Vec::new(),
                derived: Vec::new(),
                va_lists: Vec::new(),
            });
        }
    }

    // --- Live values at each site. ---
    let (blocks, cfg) = function_cfg(f);
    let live = record_liveness(cx, f, &blocks, &cfg);
    // Sites that run with the setjmp buffer armed re-arm it on resume; the
    // values live after the setjmp are live there too (the longjmp edge).
    // None: armed on some paths, re-armed when the carried flag says so.
    let armed_at: Vec<Option<bool>> = match &setjmp {
        None => vec![Some(false); sites.len()],
        Some((call, ..)) => {
            let armed = setjmp::Armed::new(&blocks, &cfg, *call);
            sites.iter().map(|s| armed.at(s.call)).collect()
        }
    };
    assert!(
        armed_flag.is_some() || !armed_at.contains(&None),
        "checked in plan()"
    );
    let rearm: Vec<bool> = armed_at.iter().map(|a| *a != Some(false)).collect();
    // An indirect call's target is not carried: on resume it is the
    // function of the next frame record (`__hc_resume_take`).
    let site_vals: Vec<Vec<Val>> = sites
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut vals = live.live_after(s.call);
            if let Some((call, args, ..)) = setjmp.as_ref().filter(|_| rearm[k]) {
                let extra = live.live_after(*call);
                for v in extra.into_iter().chain(args.iter().copied()) {
                    // (An operand kept in a slot of its own is carried there.)
                    if v.is_register() && !vals.contains(&v) && !memory_slot.contains_key(&v) {
                        vals.push(v);
                    }
                }
            }
            vals
        })
        .collect();
    // Each live value with what it is recomputed from (`recomputable`
    // first, then `derived_from_live`: the flag), or None: carried. A value
    // is recomputed from a live operand only if that operand is live at
    // every site where the value is, and the value is nowhere the operand
    // another one is recomputed from: one carried at some sites and
    // recomputed at others would be restored from a record without it.
    let how: Vec<Vec<_>> = site_vals
        .iter()
        .map(|vals| {
            let here: HashSet<Val> = vals.iter().copied().collect();
            vals.iter()
                .map(|&v| match recomputable(v, &shadow, 0) {
                    Some(base) => (v, Some(base), false),
                    None => (v, derived_from_live(v, &here, &shadow), true),
                })
                .collect()
        })
        .collect();
    let mut carried_somewhere: HashSet<Val> = HashSet::new();
    for &(v, base, _) in how.iter().flatten().filter(|h| h.2) {
        match base {
            None => {
                carried_somewhere.insert(v);
            }
            Some(base) => carried_somewhere.extend(base),
        }
    }
    for (s, vals) in sites.iter_mut().zip(how) {
        for (v, base, from_live) in vals {
            let base = base.filter(|_| !(from_live && carried_somewhere.contains(&v)));
            match base {
                Some(base) => {
                    s.derived.push(v);
                    if let Some(b) = base {
                        if !s.carried.contains(&b) {
                            s.carried.push(b);
                        }
                    }
                }
                None if !s.carried.contains(&v) => s.carried.push(v),
                None => {}
            }
        }
        // A base carried for a derived value may itself be derived-looking;
        // carried wins (it is read from the record).
        s.derived.retain(|d| !s.carried.contains(d));
        s.carried.sort_by_key(|v| live.position(*v));
        s.derived.sort_by_key(|v| live.position(*v));
    }
    // --- `va_list` objects a resume writes back in the destination's layout
    // (variadic.rs): a body's `va_list` parameter while it is live, and
    // `va_list` slots whose contents are read after the site. ---
    {
        let va_param = f
            .params()
            .into_iter()
            .find(|p| variadic::is_va_list_param(f, *p));
        let order: HashMap<Val, usize> = blocks
            .iter()
            .flat_map(|b| b.instructions())
            .enumerate()
            .map(|(i, v)| (v, i))
            .collect();
        let block_of: HashMap<Block, usize> =
            blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();
        let mut va_slots: Vec<(usize, Val)> = shadow
            .index
            .iter()
            .filter(|(_, k)| {
                agreed.is_some_and(|g| g.differing.contains(k))
                    && rt.is_va_list(&shadow.shapes[**k])
            })
            .map(|(g, k)| (*k, *g))
            .collect();
        va_slots.sort_by_key(|(k, g)| (*k, order.get(g).copied()));
        let dominates = |d: Val, at: Val| {
            let (bd, ba) = (block_of[&d.block()], block_of[&at.block()]);
            if bd == ba {
                order[&d] < order[&at]
            } else {
                cfg.dominates(bd, ba)
            }
        };
        for s in sites.iter_mut() {
            if let Some(p) = va_param.filter(|p| s.carried.contains(p)) {
                s.va_lists.push((None, p));
            }
            for &(k, g) in &va_slots {
                if s.va_lists.iter().any(|(x, _)| *x == Some(k))
                    || !dominates(g, s.call)
                    || frame::read_after(g, &[s.call], &blocks).is_none()
                {
                    continue;
                }
                s.va_lists.push((Some(k), g));
                if !s.derived.contains(&g) && !s.carried.contains(&g) {
                    s.derived.push(g);
                    s.derived.sort_by_key(|v| live.position(*v));
                    // Recomputed from its frame, which nothing else may
                    // carry here (m4's `m4_failure`: the callee is the
                    // slot's only reader, and it never returns).
                    let (frame, _) = shadow.slots[&g];
                    if !s.carried.contains(&frame) {
                        s.carried.push(frame);
                        s.carried.sort_by_key(|v| live.position(*v));
                    }
                }
            }
        }
    }
    // Bases of recomputed values, before demotion rewrites them (a constant
    // operand, as a constant global's address under a load, needs none).
    let mut bases: HashMap<Val, Val> = HashMap::new();
    let mut stack: Vec<Val> = sites
        .iter()
        .flat_map(|s| s.derived.iter().copied())
        .collect();
    let carried_anywhere: HashSet<Val> = sites
        .iter()
        .flat_map(|s| s.carried.iter().copied())
        .collect();
    while let Some(v) = stack.pop() {
        if v.is_instruction()
            && !carried_anywhere.contains(&v)
            && !shadow.slots.contains_key(&v)
            && !v.is_call()
            && v.operand(0).is_register()
            && !bases.contains_key(&v)
        {
            bases.insert(v, v.operand(0));
            stack.push(v.operand(0));
        }
    }
    let loops = cfg.loops();
    let innermost = cfg::innermost_loop(&loops, blocks.len());
    let block_index: HashMap<Block, usize> =
        blocks.iter().enumerate().map(|(i, b)| (*b, i)).collect();

    // --- The frame record: one layout per function, every carried value at
    // a fixed offset, so each value can be restored once per loop level. ---
    let mut record: Vec<Val> = sites
        .iter()
        .flat_map(|s| s.carried.iter().copied())
        .collect();
    record.sort_by_key(|v| live.position(*v));
    record.dedup();
    // Each value takes one or more consecutive pieces (pieces.rs).
    let mut record_types: Vec<ValueType> = Vec::new();
    let mut record_pieces: HashMap<Val, (usize, Vec<Ty>)> = HashMap::new();
    for &v in &record {
        let (tys, records): (Vec<Ty>, Vec<ValueType>) = pieces::pieces(cx, v.ty())
            .expect("checked in plan()")
            .into_iter()
            .unzip();
        record_pieces.insert(v, (record_types.len(), tys));
        let arg = v.is_argument();
        record_types.extend(records.into_iter().map(|vt| {
            if arg {
                pieces::argument_word(vt)
            } else {
                vt
            }
        }));
    }
    // `va_list` objects after the values, the parameter first, then by slot.
    let mut va_keys: Vec<Option<usize>> = sites
        .iter()
        .flat_map(|s| s.va_lists.iter().map(|(k, _)| *k))
        .collect();
    va_keys.sort();
    va_keys.dedup();
    let va_index: HashMap<Option<usize>, usize> = va_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, record_types.len() + i))
        .collect();
    record_types.extend(va_keys.iter().map(|_| ValueType::VaList));
    // Then what a setjmp armed on some paths keeps in slots, at every site.
    let memory_index = record_types.len();
    record_types.extend(
        in_memory
            .iter()
            .map(|(_, ty)| value_type(*ty).expect("checked in plan()")),
    );
    let (record_offsets, _) = record_layout(&record_types);
    // (byte offset in the record, IR type) of each piece of a carried value.
    let piece_slots = |v: &Val| -> Vec<(u64, Ty)> {
        let (first, tys) = &record_pieces[v];
        tys.iter()
            .enumerate()
            .map(|(i, t)| (record_offsets[first + i] as u64, *t))
            .collect()
    };

    // --- Where each value is restored. Resuming enters every loop through
    // its header (DESIGN.md 3.3) and restores each value at the loop level
    // of its definition: a value defined outside a loop is restored before
    // the loop is entered, so inside the loop it still has one definition
    // (a header phi), and SSA repair adds phis at loop entries and at the
    // sites' blocks only. (Restoring everything at every site made a phi of
    // every loop-invariant value at every join of an interpreter loop:
    // sqlite3VdbeExec grew 30x and took 100 s to compile.) ---
    let chains: Vec<Vec<usize>> = sites
        .iter()
        .map(|s| {
            let mut chain = Vec::new();
            let mut l = innermost[block_index[&s.call.block()]];
            while let Some(li) = l {
                chain.push(li);
                l = loops[li].parent;
            }
            chain.reverse();
            chain
        })
        .collect();
    let def_block = |v: Val| {
        if v.is_argument() {
            0
        } else {
            block_index[&v.block()]
        }
    };
    // level → (carried values, derived values) restored there; None: before any loop.
    let mut restore_at: BTreeMap<Option<usize>, (Vec<Val>, Vec<Val>)> = BTreeMap::new();
    for (k, s) in sites.iter().enumerate() {
        for (v, derived) in s
            .carried
            .iter()
            .map(|v| (*v, false))
            .chain(s.derived.iter().map(|v| (*v, true)))
        {
            let db = def_block(v);
            let level = chains[k]
                .iter()
                .rev()
                .copied()
                .find(|&li| loops[li].blocks.binary_search(&db).is_ok());
            let entry = restore_at.entry(level).or_default();
            let list = if derived { &mut entry.1 } else { &mut entry.0 };
            if !list.contains(&v) {
                list.push(v);
            }
        }
    }

    // --- The last step of each resume path (filled after demotion), and the
    // operands of each re-issued call that no record carries: their values do
    // not matter (the callee resumes from its own record) but must be well
    // defined, so the resume edge brings frozen poison (byval: a zero page,
    // which the call copies from). ---
    let byval = ir::Ctx::enum_kind("byval");
    let derived_anywhere: HashSet<Val> = sites
        .iter()
        .flat_map(|s| s.derived.iter().copied())
        .collect();
    let mut resume_block = Vec::new();
    for (k, s) in sites.iter().enumerate().filter(|_| here) {
        let target = s.call.block();
        let preds = &cfg.preds[block_index[&target]];
        assert_eq!(preds.len(), 1, "a site's block has one predecessor");
        let pred = blocks[preds[0]];
        let r = cx.append_block(f, &format!("hc.resume.{k}"));
        // The frame's record is used up; the next one is the callee's,
        // whose function the runtime returns.
        b.at_end(r);
        // A call goes to the stub that takes the record and jumps to the
        // next frame's function with the call's arguments: no call to
        // `__hc_resume_take` here (Lua's copies: 4982 of them). A poll, and
        // a call recomputed on resume, take it themselves.
        let enters = !ablated("resume-take-calls")
            && s.kind == SiteKind::Call
            && !derived_anywhere.contains(&s.call);
        let next = if enters {
            rt.resume_enter
        } else {
            b.call(rt.resume_take_ty, rt.resume_take, &[], "hc.callee")
        };
        let nargs = s.call.num_args();
        for j in 0..=nargs {
            let o = s.call.operand(j);
            // A call re-issued on resume goes to the function whose record
            // comes next, even when it names another: the callee may have
            // left by a sibling call (`is_sibling_call`) to the one whose
            // frame was captured.
            // (Not for a call that is itself recomputed on resume: its
            // copy in the resume path would take the phi.)
            let callee =
                j == nargs && s.kind == SiteKind::Call && !derived_anywhere.contains(&s.call);
            if !callee && (!o.is_register() || s.carried.contains(&o) || s.derived.contains(&o)) {
                continue;
            }
            let dummy = if j == nargs {
                next
            } else if s.call.has_call_site_enum_attr(param_index(j), byval) {
                rt.zero_page
            } else if ablated("zero-resume-args") {
                cx.null(o.ty())
            } else {
                // Whatever the register holds (`freeze poison` is no
                // instruction): zeros cost an instruction each, and Lua's
                // copies 3% of their size.
                b.at_end(r);
                b.freeze(cx.poison(o.ty()), "hc.any")
            };
            b.at_start(target);
            let phi = b.phi(o.ty(), "hc.arg");
            phi.add_incoming(o, pred);
            phi.add_incoming(dummy, r);
            s.call.set_operand(j, phi);
        }
        resume_block.push(r);
    }

    // --- Demote every carried or derived value to a stack slot; mem2reg
    // rebuilds SSA once the resume paths add their definitions. ---
    let mut demoted: Vec<Val> = sites
        .iter()
        .flat_map(|s| s.carried.iter().chain(&s.derived))
        .copied()
        .collect();
    demoted.sort_by_key(|v| live.position(*v));
    demoted.dedup();
    let mut slot: HashMap<Val, Val> = HashMap::new();
    b.before(hc_entry.first().expect("hc.entry has the poll"));
    for &v in &demoted {
        slot.insert(v, b.alloca(v.ty(), "hc.slot"));
    }
    let after_slots = hc_entry.instructions()[demoted.len()];
    for &v in &demoted {
        demote(&b, v, slot[&v], after_slots);
    }

    // Restores one level's values from the record at `rec` into their slots.
    let restore = |b: &Builder, rec: Val, level: Option<usize>| {
        let Some((carried, derived)) = restore_at.get(&level) else {
            return;
        };
        let vals = b.gep_i8(
            cx,
            rec,
            cx.const_int(cx.i64(), abi::RECORD_VALUES_OFFSET),
            "hc.values",
        );
        for v in carried {
            let mut parts = piece_slots(v).into_iter().map(|(off, ty)| {
                let at = b.gep_i8(cx, vals, cx.const_int(cx.i64(), off), "");
                let x = b.load(ty, at, "");
                x.set_alignment(8);
                x
            });
            let x = pieces::join(cx, b, v.ty(), &mut parts);
            b.store(x, slot[v]);
        }
        let mut done = HashMap::new();
        for &fr in shadow.frames.iter().filter(|fr| slot.contains_key(fr)) {
            done.insert(fr, b.load(fr.ty(), slot[&fr], ""));
        }
        // Carried bases, restored at this level or an outer one.
        for d in derived {
            let mut root = *d;
            while let Some(&o) = bases.get(&root) {
                root = o;
            }
            if carried_anywhere.contains(&root) && !done.contains_key(&root) {
                done.insert(root, b.load(root.ty(), slot[&root], ""));
            }
        }
        for d in derived {
            let x = recompute(cx, b, *d, &shadow, &bases, &mut done);
            b.store(x, slot[d]);
        }
    };

    // --- Dispatch. The entry's dispatch restores the values defined
    // outside loops and goes to sites outside loops or to the outermost
    // header; each header's slow path goes, for the sites inside its loop,
    // to a block restoring the loop's values, then on to the site or the
    // next inner header. ---
    let mut new_header_preds: Vec<(Block, Block)> = Vec::new();
    let mut loop_restore: HashMap<usize, Block> = HashMap::new();
    let mut loop_cases: HashMap<usize, Vec<(Val, Block)>> = HashMap::new();
    let mut entry_cases = Vec::new();
    for (k, chain) in chains.iter().enumerate().filter(|_| here) {
        let kv = cx.const_int(i32t, k as u64);
        match chain.first() {
            None => entry_cases.push((kv, resume_block[k])),
            Some(&outer) => {
                let h = blocks[loops[outer].header];
                entry_cases.push((kv, h));
                new_header_preds.push((h, dispatch));
            }
        }
        for (pos, &li) in chain.iter().enumerate() {
            let r = *loop_restore
                .entry(li)
                .or_insert_with(|| cx.append_block(f, &format!("hc.restore.loop{li}")));
            let (sw, _) = header_switch[&blocks[loops[li].header]];
            // SAFETY: `sw` is a switch instruction built above.
            unsafe { inkwell::llvm_sys::core::LLVMAddCase(sw.0, kv.0, r.0) };
            let next = match chain.get(pos + 1) {
                Some(&inner) => {
                    let ih = blocks[loops[inner].header];
                    new_header_preds.push((ih, r));
                    ih
                }
                None => resume_block[k],
            };
            loop_cases.entry(li).or_default().push((kv, next));
        }
    }
    // (A function whose resume paths are in a copy forwarded there above.)
    if here {
        b.at_end(dispatch);
        restore(&b, rec, None);
        b.switch(site_idx, bad, &entry_cases);
        for (li, r) in &loop_restore {
            b.at_end(*r);
            let rec = b.call(rt.resume_frame_ty, rt.resume_frame, &[f], "hc.rec");
            restore(&b, rec, Some(*li));
            b.switch(site_of(rec), bad, &loop_cases[li]);
        }
        for (k, s) in sites.iter().enumerate() {
            // The record names each `va_list`'s next argument, and what a
            // setjmp armed on some paths keeps in slots: written back (the
            // `va_list`s in this ISA's layout) before the record is used up.
            if !s.va_lists.is_empty() || !in_memory.is_empty() {
                b.at_start(resume_block[k]);
                let rec = b.call(rt.resume_frame_ty, rt.resume_frame, &[f], "hc.rec");
                let vals = b.gep_i8(
                    cx,
                    rec,
                    cx.const_int(cx.i64(), abi::RECORD_VALUES_OFFSET),
                    "hc.values",
                );
                let at = |index: usize| {
                    let off = record_offsets[index] as u64;
                    b.gep_i8(cx, vals, cx.const_int(cx.i64(), off), "")
                };
                for (key, v) in &s.va_lists {
                    let next = b.load(ptr, at(va_index[key]), "hc.va.next");
                    let object = b.load(ptr, slot[v], "");
                    variadic::write_stack_form(cx, &b, rt.va_list, object, next);
                }
                for (i, (sl, ty)) in in_memory.iter().enumerate() {
                    let x = b.load(*ty, at(memory_index + i), "");
                    b.store(x, *sl);
                }
            }
            b.at_end(resume_block[k]);
            let site = s.call.block();
            match setjmp.as_ref().filter(|_| rearm[k]) {
                None => {
                    b.br(site);
                }
                Some((call, args, cont)) => {
                    // Armed on some paths: re-armed only if the flag is set.
                    let at = match (armed_at[k], armed_flag) {
                        (None, Some(flag)) => {
                            let rb = cx.append_block(f, &format!("hc.rearm.{k}"));
                            let set = b.load(cx.i8(), flag, "hc.armed");
                            let set =
                                b.icmp(LLVMIntPredicate::LLVMIntNE, set, cx.null(set.ty()), "");
                            b.cond_br(set, rb, site);
                            for phi in site.phis() {
                                let from_r = phi
                                    .incoming()
                                    .into_iter()
                                    .find(|(_, p)| *p == resume_block[k])
                                    .map(|(v, _)| v)
                                    .expect("a site's phis take the resume path's values");
                                phi.add_incoming(from_r, rb);
                            }
                            b.at_end(rb);
                            rb
                        }
                        _ => resume_block[k],
                    };
                    let args: Vec<Val> = args
                        .iter()
                        .map(|a| match slot.get(a).or(memory_slot.get(a)) {
                            Some(sl) => b.load(a.ty(), *sl, ""),
                            None => *a,
                        })
                        .collect();
                    let again =
                        b.call(call.called_type(), call.called_operand(), &args, "hc.rearm");
                    again
                        .add_call_site_attribute(ir::FUNCTION_INDEX, cx.enum_attr("returns_twice"));
                    let armed = b.icmp(LLVMIntPredicate::LLVMIntEQ, again, cx.null(again.ty()), "");
                    b.cond_br(armed, site, *cont);
                    setjmp_result(*call, *cont).add_incoming(again, at);
                }
            }
        }
    }
    // One phi entry per edge: a switch may reach a header by several cases.
    for (h, p) in new_header_preds {
        for phi in h.phis() {
            phi.add_incoming(cx.poison(phi.ty()), p);
        }
    }

    // --- Statepoints. Replacing a call erases it, and a call's result may be
    // carried at a later site: take every carried value's type and slot first. ---
    let carried: Vec<Vec<(Ty, Val)>> = sites
        .iter()
        .map(|s| s.carried.iter().map(|v| (v.ty(), slot[v])).collect())
        .collect();
    // Polls with few values hand them to the migration point in a buffer
    // laid out as the function's frame record, written only on the cold
    // path: the statepoint carries none, so the register allocator never
    // has to hold them in registers at once around a preserve_all call.
    // The buffer is the runtime's, not a slot in this frame: a frame that
    // holds one kept small looping functions from going frameless and cost
    // bzip2's block sort a register (bzip2 -3.5 points of instructions).
    // The poll marks the buffer busy first (volatile stores keep that
    // order), so a signal handler's poll in between is caught
    // (`__hc_migrate_point_c`). Polls with many values pass them as deopt
    // operands, like calls (`poll::buffered`).
    // Only a restore runs a copy, so its code may be slower for being
    // smaller and quicker to compile: where SSA repair would join many
    // values with their resume paths (one phi per value at each site), the
    // values stay in their slots, loaded at each use, and the statepoints
    // take the slots. With few joins, or many uses for each (bzip2's
    // `BZ2_decompress`: 14133 loads for 4813 joins, its copy twice as
    // large), the loads cost more than the phis.
    let joins: usize = sites.iter().map(|s| s.carried.len()).sum();
    // (`record`: every carried value, once.)
    let loads = || record.iter().map(|v| slot[v].uses().len()).sum::<usize>();
    let in_slots = matches!(resume, Resume::Copy)
        && !ablated("slot-operands")
        && joins >= MIN_SLOT_JOINS
        && loads() <= MAX_LOADS_PER_JOIN * joins;
    // A copy's polls pass deopt operands whatever their number: a buffered
    // poll's stores are code (7-10 bytes a word on x86_64, Lua's copies
    // 481 KB -> 422 KB without them), and how fast a copy's loops run
    // matters only after a restore (Lua's bench script migrated early ran
    // as fast).
    let copy_buffers = ablated("copy-deopt-polls");
    let buffered: Vec<bool> = sites
        .iter()
        .map(|s| {
            let words = s
                .carried
                .iter()
                .map(|v| record_pieces[v].1.len())
                .sum::<usize>()
                + s.va_lists.len()
                + in_memory.len();
            s.kind.is_poll()
                && (ablated("deopt-polls")
                    || (poll::buffered(words) && (copy_buffers || !matches!(resume, Resume::Copy))))
        })
        .collect();
    let (_, record_size) = record_layout(&record_types);
    let buf = if record_size <= abi::POLL_RECORD_SIZE || !buffered.contains(&true) {
        rt.poll_record
    } else {
        b.before(hc_entry.first().expect("hc.entry has instructions"));
        let a = b.alloca(ir::array_type(cx.i8(), record_size as u64), "hc.record");
        a.set_alignment(16);
        a
    };
    let elementtype_kind = "elementtype";
    let value_claims: Vec<u32> = [
        "nonnull",
        "noundef",
        "dereferenceable",
        "dereferenceable_or_null",
        "align",
        "range",
        "nofpclass",
    ]
    .iter()
    .map(|n| ir::Ctx::enum_kind(n))
    .collect();
    let align_kind = ir::Ctx::enum_kind("align");
    let mut out_sites = Vec::new();
    for (k, s) in sites.iter().enumerate() {
        let call = s.call;
        b.before(call);
        let deopt: Vec<Val> = if buffered[k] {
            b.store(cx.const_int(i32t, 1), rt.poll_record_busy)
                .set_volatile();
            for ((ty, sl), v) in carried[k].iter().zip(&s.carried) {
                let x = b.load(*ty, *sl, "");
                let parts = pieces::split(cx, &b, x);
                for ((off, _), p) in piece_slots(v).into_iter().zip(parts) {
                    let at = b.gep_i8(cx, buf, cx.const_int(cx.i64(), off), "");
                    let st = b.store(p, at);
                    st.set_alignment(8);
                    st.set_volatile();
                }
            }
            for (key, v) in &s.va_lists {
                let x = b.load(ptr, slot[v], "");
                let off = record_offsets[va_index[key]] as u64;
                let at = b.gep_i8(cx, buf, cx.const_int(cx.i64(), off), "");
                let st = b.store(x, at);
                st.set_alignment(8);
                st.set_volatile();
            }
            for (i, (sl, ty)) in in_memory.iter().enumerate() {
                let x = b.load(*ty, *sl, "");
                let off = record_offsets[memory_index + i] as u64;
                let at = b.gep_i8(cx, buf, cx.const_int(cx.i64(), off), "");
                b.store(x, at).set_volatile();
            }
            call.set_operand(0, buf);
            Vec::new()
        } else {
            carried[k]
                .iter()
                .flat_map(|&(ty, sl)| {
                    if in_slots && value_type(ty).is_some() {
                        vec![sl]
                    } else {
                        pieces::split(cx, &b, b.load(ty, sl, ""))
                    }
                })
                .chain(s.va_lists.iter().map(|(_, v)| b.load(ptr, slot[v], "")))
                .chain(in_memory.iter().map(|(sl, ty)| b.load(*ty, *sl, "")))
                .collect()
        };
        let nargs = call.num_args();
        let callee = call.called_operand();
        let fty = call.called_type();
        let flags = 0;
        let mut args = vec![
            cx.const_int(cx.i64(), k as u64),
            cx.const_int(i32t, 0),
            callee,
            cx.const_int(i32t, nargs as u64),
            cx.const_int(i32t, flags),
        ];
        args.extend((0..nargs).map(|j| call.operand(j)));
        args.push(cx.const_int(i32t, 0));
        args.push(cx.const_int(i32t, 0));
        let sp = b.call_with_bundle(rt.statepoint_ty, rt.statepoint, &args, "deopt", &deopt, "");
        sp.set_call_conv(call.call_conv());
        sp.add_call_site_attribute(param_index(2), cx.type_attr(elementtype_kind, fty));
        for j in 0..nargs {
            // A resume path passes zeros for operands the callee ignores
            // (its own record has them), so no attribute may claim what a
            // zero breaks: with `nonnull noundef` on a null, SimplifyCFG
            // (run by AArch64's codegen) proves the resume path undefined
            // and cuts it to `unreachable`. Codegen needs only ABI attributes.
            // (`align` on a byval argument is ABI: it places the copy.)
            let is_byval = call.has_call_site_enum_attr(param_index(j), byval);
            for a in call.call_site_attributes(param_index(j)) {
                let claim = a.kind().is_some_and(|k| value_claims.contains(&k));
                if claim && !(is_byval && a.kind() == Some(align_kind)) {
                    continue;
                }
                sp.add_call_site_attribute(param_index(5 + j), a);
            }
        }
        let ret = fty.return_type();
        if !ret.is_void() {
            let gc_result = cx.intrinsic("llvm.experimental.gc.result", &[ret]);
            let r = b.call(gc_result.function_type(), gc_result, &[sp], "");
            call.replace_all_uses_with(r);
        }
        call.erase();
        out_sites.push(Site {
            kind: s.kind,
            callee: s.callee.clone(),
            slots: s
                .carried
                .iter()
                .flat_map(|v| {
                    let (first, tys) = &record_pieces[v];
                    (*first..first + tys.len()).map(|i| i as u32)
                })
                .chain(s.va_lists.iter().map(|(key, _)| va_index[key] as u32))
                .chain((0..in_memory.len()).map(|i| (memory_index + i) as u32))
                .collect(),
        });
    }
    if let Resume::In { copy, poll } = resume {
        // A set poll word sends the whole call to the copy, whose own entry
        // poll migrates: this code then needs no registers or stack for a
        // slow path at entry (small functions keep their frameless paths).
        // Without a poll, the entry just goes on. The entry's migration
        // point was built for site numbering and liveness only; each block
        // goes after those that branch to it.
        if poll {
            let blk = cx.append_block(f, "hc.entry.copy");
            b.at_end(blk);
            b.forward_call(f, copy);
            entry_branch.set_successor(0, blk);
        } else {
            erase_poll(&b, entry_branch, old_entry);
        }
        for blk in [entry_slow, entry_mp, dispatch] {
            blk.delete();
        }
        // Each iteration of these loops passes an inner loop's poll: the
        // site stays (the copy has it), `f` never stops there.
        for (br, mp, body) in redundant {
            erase_poll(&b, br, body);
            mp.delete();
        }
    }
    f.set_gc(abi::GC_STRATEGY);
    Transformed {
        sites: out_sites,
        record: record_types,
        frame: shadow.layout,
        shapes: shadow.shapes,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn libc_lists_are_sorted_for_binary_search() {
        for list in [super::LEAF_LIBC, super::LIBC_VARIADIC, super::CALLBACK_LIBC] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
    }
}
