//! A thin layer over LLVM-C for the instrumentation pass.
//!
//! inkwell owns the context, modules, target machines, pass pipelines and code
//! generation. The instrumentation, though, rewrites operands of every kind of
//! value generically (arguments, instructions, phis, calls) and keys analyses
//! by value identity; doing that through inkwell's typed enums would be a
//! conversion at every step. So this module wraps the few dozen LLVM-C calls
//! it needs in `Copy` handles.
//!
//! # Safety
//! Every handle here is created from a live `inkwell::module::Module` that the
//! caller holds (and does not drop) for as long as the handles are used; LLVM-C
//! functions are then called with valid references of the kinds they expect,
//! which each wrapper checks where LLVM does not (e.g. `LLVMIsA*` before a
//! kind-specific call). That is the single invariant the `unsafe` blocks below
//! rely on.

use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::*;
use inkwell::llvm_sys::{LLVMCallConv, LLVMIntPredicate, LLVMOpcode, LLVMTypeKind};
use std::ffi::{CStr, CString};

/// An LLVM value: instruction, argument, constant, function, ...
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Val(pub LLVMValueRef);
/// A basic block.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Block(pub LLVMBasicBlockRef);
/// A type.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Ty(pub LLVMTypeRef);
/// An attribute.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Attr(pub LLVMAttributeRef);
impl Attr {
    /// The attribute's kind (as `Ctx::enum_kind` numbers them), or `None`
    /// for a string attribute.
    pub fn kind(self) -> Option<u32> {
        // SAFETY: see module docs; the kind is read only from non-string attributes.
        unsafe { (LLVMIsStringAttribute(self.0) == 0).then(|| LLVMGetEnumAttributeKind(self.0)) }
    }
}
/// A metadata node, as a value for `set_metadata`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Md(pub LLVMValueRef);

fn cstr(s: &str) -> CString {
    CString::new(s).expect("LLVM names contain no NUL")
}

fn owned(p: *const std::os::raw::c_char, len: usize) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: LLVM returns a pointer to `len` bytes it owns, valid while the value lives.
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// Calling conventions hcc uses.
pub const CC_C: u32 = LLVMCallConv::LLVMCCallConv as u32;
pub const CC_FAST: u32 = LLVMCallConv::LLVMFastCallConv as u32;
pub const CC_PRESERVE_MOST: u32 = LLVMCallConv::LLVMPreserveMostCallConv as u32;
pub const CC_PRESERVE_ALL: u32 = LLVMCallConv::LLVMPreserveAllCallConv as u32;

/// Attribute index of parameter `i` (LLVM-C numbering: 0 is the return value).
pub fn param_index(i: u32) -> u32 {
    i + 1
}
pub const FUNCTION_INDEX: u32 = u32::MAX;

impl Ty {
    pub fn kind(self) -> LLVMTypeKind {
        // SAFETY: see module docs.
        unsafe { LLVMGetTypeKind(self.0) }
    }
    pub fn int_width(self) -> u32 {
        // SAFETY: see module docs; only called on integer types.
        unsafe { LLVMGetIntTypeWidth(self.0) }
    }
    pub fn vector_len(self) -> u32 {
        // SAFETY: see module docs; only called on vector types.
        unsafe { LLVMGetVectorSize(self.0) }
    }
    pub fn element(self) -> Ty {
        // SAFETY: see module docs; only called on sequential types.
        Ty(unsafe { LLVMGetElementType(self.0) })
    }
    pub fn is_void(self) -> bool {
        self.kind() == LLVMTypeKind::LLVMVoidTypeKind
    }
    pub fn is_vararg_fn(self) -> bool {
        // SAFETY: see module docs; only called on function types.
        unsafe { LLVMIsFunctionVarArg(self.0) != 0 }
    }
    /// The number of elements of a struct type.
    pub fn struct_field_count(self) -> u32 {
        // SAFETY: see module docs; only called on struct types.
        unsafe { LLVMCountStructElementTypes(self.0) }
    }
    /// Parameter types of a function type.
    pub fn param_types(self) -> Vec<Ty> {
        // SAFETY: see module docs; only called on function types, and the
        // buffer is sized by LLVM's own count.
        unsafe {
            let n = LLVMCountParamTypes(self.0) as usize;
            let mut buf = vec![std::ptr::null_mut(); n];
            LLVMGetParamTypes(self.0, buf.as_mut_ptr());
            buf.into_iter().map(Ty).collect()
        }
    }
    pub fn return_type(self) -> Ty {
        // SAFETY: see module docs; only called on function types.
        Ty(unsafe { LLVMGetReturnType(self.0) })
    }
    /// Element types of a struct.
    pub fn struct_elements(self) -> Vec<Ty> {
        // SAFETY: see module docs; only called on struct types.
        unsafe {
            let n = LLVMCountStructElementTypes(self.0);
            (0..n)
                .map(|i| Ty(LLVMStructGetTypeAtIndex(self.0, i)))
                .collect()
        }
    }
    /// A named struct's name.
    pub fn struct_name(self) -> Option<String> {
        if self.kind() != LLVMTypeKind::LLVMStructTypeKind {
            return None;
        }
        // SAFETY: see module docs; a struct type; the name is copied.
        unsafe {
            let p = LLVMGetStructName(self.0);
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }
    pub fn array_len(self) -> u64 {
        // SAFETY: see module docs; only called on array types.
        unsafe { LLVMGetArrayLength2(self.0) }
    }
    pub fn print(self) -> String {
        // SAFETY: see module docs; the message is disposed after copying.
        unsafe {
            let p = LLVMPrintTypeToString(self.0);
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            LLVMDisposeMessage(p);
            s
        }
    }
}

impl Val {
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }
    pub fn ty(self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMTypeOf(self.0) })
    }
    pub fn name(self) -> String {
        let mut len = 0;
        // SAFETY: see module docs.
        let p = unsafe { LLVMGetValueName2(self.0, &mut len) };
        owned(p, len)
    }
    pub fn set_name(self, name: &str) {
        // SAFETY: see module docs.
        unsafe { LLVMSetValueName2(self.0, name.as_ptr() as *const _, name.len()) }
    }
    pub fn is_instruction(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAInstruction(self.0).is_null() }
    }
    pub fn is_argument(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAArgument(self.0).is_null() }
    }
    pub fn is_constant(self) -> bool {
        // SAFETY: see module docs.
        unsafe { LLVMIsConstant(self.0) != 0 }
    }
    pub fn is_function(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAFunction(self.0).is_null() }
    }
    pub fn is_inline_asm(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAInlineAsm(self.0).is_null() }
    }
    pub fn is_phi(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAPHINode(self.0).is_null() }
    }
    pub fn is_call(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsACallInst(self.0).is_null() }
    }
    pub fn is_alloca(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAAllocaInst(self.0).is_null() }
    }
    pub fn is_global_variable(self) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMIsAGlobalVariable(self.0).is_null() }
    }
    /// Values the liveness analysis tracks: results of instructions and arguments.
    pub fn is_register(self) -> bool {
        (self.is_instruction() || self.is_argument())
            && !self.ty().is_void()
            && self.ty().kind() != LLVMTypeKind::LLVMTokenTypeKind
    }
    pub fn opcode(self) -> Option<LLVMOpcode> {
        if self.is_instruction() {
            // SAFETY: see module docs; checked to be an instruction.
            Some(unsafe { LLVMGetInstructionOpcode(self.0) })
        } else {
            None
        }
    }
    pub fn num_operands(self) -> u32 {
        // SAFETY: see module docs.
        let n = unsafe { LLVMGetNumOperands(self.0) };
        n.max(0) as u32
    }
    pub fn operand(self, i: u32) -> Val {
        // SAFETY: see module docs; callers stay below num_operands.
        Val(unsafe { LLVMGetOperand(self.0, i) })
    }
    pub fn operands(self) -> impl Iterator<Item = Val> {
        (0..self.num_operands()).map(move |i| self.operand(i))
    }
    pub fn set_operand(self, i: u32, v: Val) {
        // SAFETY: see module docs.
        unsafe { LLVMSetOperand(self.0, i, v.0) }
    }
    pub fn block(self) -> Block {
        // SAFETY: see module docs; only called on instructions.
        Block(unsafe { LLVMGetInstructionParent(self.0) })
    }
    pub fn next(self) -> Option<Val> {
        // SAFETY: see module docs.
        let v = unsafe { LLVMGetNextInstruction(self.0) };
        (!v.is_null()).then_some(Val(v))
    }
    pub fn prev(self) -> Option<Val> {
        // SAFETY: see module docs.
        let v = unsafe { LLVMGetPreviousInstruction(self.0) };
        (!v.is_null()).then_some(Val(v))
    }
    /// Users of this value, with the operand index each uses it at.
    pub fn uses(self) -> Vec<(Val, u32)> {
        let mut out = Vec::new();
        // SAFETY: see module docs; the use list is read before anything changes it.
        unsafe {
            let mut u = LLVMGetFirstUse(self.0);
            while !u.is_null() {
                let user = LLVMGetUser(u);
                let n = LLVMGetNumOperands(user).max(0) as u32;
                for i in 0..n {
                    if LLVMGetOperandUse(user, i) == u {
                        out.push((Val(user), i));
                        break;
                    }
                }
                u = LLVMGetNextUse(u);
            }
        }
        out
    }
    pub fn replace_all_uses_with(self, other: Val) {
        // SAFETY: see module docs.
        unsafe { LLVMReplaceAllUsesWith(self.0, other.0) }
    }
    /// Removes a function (with no remaining uses) from its module.
    pub fn delete_function(self) {
        // SAFETY: see module docs; only called on unused functions.
        unsafe { LLVMDeleteFunction(self.0) }
    }
    /// Removes a global variable (with no remaining uses) from its module.
    pub fn delete_global(self) {
        // SAFETY: see module docs; only called on unused global variables.
        unsafe { LLVMDeleteGlobal(self.0) }
    }
    pub fn erase(self) {
        // SAFETY: see module docs; the instruction has no remaining uses.
        unsafe { LLVMInstructionEraseFromParent(self.0) }
    }
    /// A copy of this instruction, not yet in any block.
    pub fn clone_inst(self) -> Val {
        // SAFETY: see module docs; only called on instructions.
        Val(unsafe { LLVMInstructionClone(self.0) })
    }
    pub fn remove_from_parent(self) {
        // SAFETY: see module docs.
        unsafe { LLVMInstructionRemoveFromParent(self.0) }
    }

    // --- phis ---
    pub fn incoming(self) -> Vec<(Val, Block)> {
        // SAFETY: see module docs; only called on phis.
        unsafe {
            let n = LLVMCountIncoming(self.0);
            (0..n)
                .map(|i| {
                    (
                        Val(LLVMGetIncomingValue(self.0, i)),
                        Block(LLVMGetIncomingBlock(self.0, i)),
                    )
                })
                .collect()
        }
    }
    pub fn add_incoming(self, v: Val, b: Block) {
        let mut vals = [v.0];
        let mut blocks = [b.0];
        // SAFETY: see module docs; only called on phis.
        unsafe { LLVMAddIncoming(self.0, vals.as_mut_ptr(), blocks.as_mut_ptr(), 1) }
    }

    // --- calls ---
    /// Makes successor `i` of this terminator `to`.
    pub fn set_successor(self, i: u32, to: Block) {
        // SAFETY: see module docs; only called on terminators with a successor `i`.
        unsafe { LLVMSetSuccessor(self.0, i, to.0) }
    }
    pub fn called_operand(self) -> Val {
        // SAFETY: see module docs; only called on calls.
        Val(unsafe { LLVMGetCalledValue(self.0) })
    }
    pub fn called_type(self) -> Ty {
        // SAFETY: see module docs; only called on calls.
        Ty(unsafe { LLVMGetCalledFunctionType(self.0) })
    }
    pub fn num_args(self) -> u32 {
        // SAFETY: see module docs; only called on calls.
        unsafe { LLVMGetNumArgOperands(self.0) }
    }
    pub fn call_conv(self) -> u32 {
        // SAFETY: see module docs; only called on calls.
        unsafe { LLVMGetInstructionCallConv(self.0) }
    }
    pub fn set_call_conv(self, cc: u32) {
        // SAFETY: see module docs; only called on calls.
        unsafe { LLVMSetInstructionCallConv(self.0, cc) }
    }
    pub fn num_bundles(self) -> u32 {
        // SAFETY: see module docs; only called on calls.
        unsafe { LLVMGetNumOperandBundles(self.0) }
    }
    pub fn intrinsic_id(self) -> u32 {
        // SAFETY: see module docs; only called on functions.
        unsafe { LLVMGetIntrinsicID(self.0) }
    }
    pub fn call_site_attributes(self, index: u32) -> Vec<Attr> {
        // SAFETY: see module docs; the buffer has room for `n` attributes.
        unsafe {
            let n = LLVMGetCallSiteAttributeCount(self.0, index);
            let mut buf = vec![std::ptr::null_mut(); n as usize];
            if n > 0 {
                LLVMGetCallSiteAttributes(self.0, index, buf.as_mut_ptr());
            }
            buf.into_iter().map(Attr).collect()
        }
    }
    pub fn add_call_site_attribute(self, index: u32, a: Attr) {
        // SAFETY: see module docs.
        unsafe { LLVMAddCallSiteAttribute(self.0, index, a.0) }
    }
    /// Gives call `self` call `from`'s function and return attributes and
    /// those of its first `params` arguments.
    pub fn copy_call_site_attributes(self, from: Val, params: u32) {
        for idx in [FUNCTION_INDEX, 0].into_iter().chain(1..=params) {
            for a in from.call_site_attributes(idx) {
                self.add_call_site_attribute(idx, a);
            }
        }
    }
    /// The type of type attribute `kind` (byval) at call-site `index`.
    pub fn call_site_type_attr(self, index: u32, kind: u32) -> Option<Ty> {
        // SAFETY: see module docs; the attribute, when present, is a type
        // attribute.
        unsafe {
            let a = LLVMGetCallSiteEnumAttribute(self.0, index, kind);
            (!a.is_null()).then(|| Ty(LLVMGetTypeAttributeValue(a)))
        }
    }
    /// The value of integer attribute `kind` at call-site `index`, if present.
    pub fn call_site_enum_attr_value(self, index: u32, kind: u32) -> Option<u64> {
        // SAFETY: see module docs.
        unsafe {
            let a = LLVMGetCallSiteEnumAttribute(self.0, index, kind);
            (!a.is_null()).then(|| LLVMGetEnumAttributeValue(a))
        }
    }
    /// The value of integer attribute `kind` at `index` of a function.
    pub fn enum_attr_value(self, index: u32, kind: u32) -> Option<u64> {
        // SAFETY: see module docs; only called on functions.
        unsafe {
            let a = LLVMGetEnumAttributeAtIndex(self.0, index, kind);
            (!a.is_null()).then(|| LLVMGetEnumAttributeValue(a))
        }
    }
    /// The type of type attribute `kind` (byval, sret) at `index` of a function.
    pub fn type_attr_at(self, index: u32, kind: u32) -> Option<Ty> {
        // SAFETY: see module docs; only called on functions, and the
        // attribute, when present, is a type attribute.
        unsafe {
            let a = LLVMGetEnumAttributeAtIndex(self.0, index, kind);
            (!a.is_null()).then(|| Ty(LLVMGetTypeAttributeValue(a)))
        }
    }
    /// Removes enum attribute `kind` at `index` of a function.
    pub fn remove_enum_attr_at(self, index: u32, kind: u32) {
        // SAFETY: see module docs; only called on functions.
        unsafe { LLVMRemoveEnumAttributeAtIndex(self.0, index, kind) }
    }
    pub fn has_call_site_enum_attr(self, index: u32, kind: u32) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMGetCallSiteEnumAttribute(self.0, index, kind).is_null() }
    }
    pub fn is_musttail(self) -> bool {
        // SAFETY: see module docs; only called on calls.
        unsafe {
            LLVMGetTailCallKind(self.0)
                == inkwell::llvm_sys::LLVMTailCallKind::LLVMTailCallKindMustTail
        }
    }
    /// A call marked `tail` (not `musttail`): the callee uses none of the
    /// caller's stack.
    pub fn is_tail(self) -> bool {
        // SAFETY: see module docs; only called on calls.
        unsafe {
            LLVMGetTailCallKind(self.0) == inkwell::llvm_sys::LLVMTailCallKind::LLVMTailCallKindTail
        }
    }
    /// The function's calling convention.
    pub fn function_call_conv(self) -> u32 {
        // SAFETY: see module docs; only called on functions.
        unsafe { LLVMGetFunctionCallConv(self.0) }
    }
    pub fn remove_call_site_enum_attr(self, index: u32, kind: u32) {
        // SAFETY: see module docs; only called on calls.
        unsafe { LLVMRemoveCallSiteEnumAttribute(self.0, index, kind) }
    }
    /// Gives the instruction `from`'s debug location.
    pub fn copy_debug_loc(self, from: Val) {
        // SAFETY: see module docs; both are instructions.
        unsafe {
            inkwell::llvm_sys::debuginfo::LLVMInstructionSetDebugLoc(
                self.0,
                inkwell::llvm_sys::debuginfo::LLVMInstructionGetDebugLoc(from.0),
            )
        }
    }
    /// Hands function `self`'s debug information entry to `to`, whose body
    /// (with its debug locations) came from `self`.
    pub fn move_subprogram_to(self, to: Val) {
        use inkwell::llvm_sys::debuginfo::{LLVMGetSubprogram, LLVMSetSubprogram};
        // SAFETY: see module docs; both are functions of one module.
        unsafe {
            let sp = LLVMGetSubprogram(self.0);
            if !sp.is_null() {
                LLVMSetSubprogram(to.0, sp);
                LLVMSetSubprogram(self.0, std::ptr::null_mut());
            }
        }
    }
    /// Removes enum attribute `kind` from a function.
    pub fn remove_fn_enum_attr(self, kind: u32) {
        // SAFETY: see module docs; only called on functions.
        unsafe { LLVMRemoveEnumAttributeAtIndex(self.0, FUNCTION_INDEX, kind) }
    }
    /// Whether LLVM's verifier accepts function `self`.
    pub fn verifies(self) -> bool {
        use inkwell::llvm_sys::analysis::{LLVMVerifierFailureAction, LLVMVerifyFunction};
        // SAFETY: see module docs; only called on defined functions.
        unsafe {
            LLVMVerifyFunction(self.0, LLVMVerifierFailureAction::LLVMReturnStatusAction) == 0
        }
    }
    /// Adds attribute `a` at `index` of a function (`param_index`, 0 for
    /// the result, FUNCTION_INDEX).
    pub fn add_attribute_at(self, index: u32, a: Attr) {
        // SAFETY: see module docs; only called on functions.
        unsafe { LLVMAddAttributeAtIndex(self.0, index, a.0) }
    }
    pub fn set_tail(self) {
        // SAFETY: see module docs; only called on calls.
        unsafe {
            LLVMSetTailCallKind(
                self.0,
                inkwell::llvm_sys::LLVMTailCallKind::LLVMTailCallKindTail,
            )
        }
    }
    /// Never a tail call, not even in code generation.
    pub fn set_notail(self) {
        // SAFETY: see module docs; only called on calls.
        unsafe {
            LLVMSetTailCallKind(
                self.0,
                inkwell::llvm_sys::LLVMTailCallKind::LLVMTailCallKindNoTail,
            )
        }
    }
    pub fn clear_tail(self) {
        // SAFETY: see module docs; only called on calls.
        unsafe {
            LLVMSetTailCallKind(
                self.0,
                inkwell::llvm_sys::LLVMTailCallKind::LLVMTailCallKindNone,
            )
        }
    }

    // --- functions ---
    pub fn is_declaration(self) -> bool {
        // SAFETY: see module docs.
        unsafe { LLVMIsDeclaration(self.0) != 0 }
    }
    pub fn blocks(self) -> Vec<Block> {
        let mut out = Vec::new();
        // SAFETY: see module docs; only called on functions.
        unsafe {
            let mut b = LLVMGetFirstBasicBlock(self.0);
            while !b.is_null() {
                out.push(Block(b));
                b = LLVMGetNextBasicBlock(b);
            }
        }
        out
    }
    pub fn entry(self) -> Block {
        // SAFETY: see module docs; only called on defined functions.
        Block(unsafe { LLVMGetEntryBasicBlock(self.0) })
    }
    pub fn params(self) -> Vec<Val> {
        // SAFETY: see module docs; only called on functions.
        unsafe {
            let n = LLVMCountParams(self.0);
            (0..n).map(|i| Val(LLVMGetParam(self.0, i))).collect()
        }
    }
    /// A global's value type.
    pub fn value_type(self) -> Ty {
        // SAFETY: see module docs; only called on globals.
        Ty(unsafe { LLVMGlobalGetValueType(self.0) })
    }
    /// Whether a global's address is insignificant (`unnamed_addr`: string
    /// literals and other constants clang makes).
    pub fn is_unnamed_addr(self) -> bool {
        // SAFETY: see module docs; only called on globals.
        unsafe {
            LLVMGetUnnamedAddress(self.0)
                == inkwell::llvm_sys::LLVMUnnamedAddr::LLVMGlobalUnnamedAddr
        }
    }
    /// The function's own type (not the pointer type of the function value).
    pub fn function_type(self) -> Ty {
        // SAFETY: see module docs; only called on functions.
        Ty(unsafe { LLVMGlobalGetValueType(self.0) })
    }
    pub fn set_gc(self, name: &str) {
        let c = cstr(name);
        // SAFETY: see module docs; LLVM copies the name.
        unsafe { LLVMSetGC(self.0, c.as_ptr()) }
    }
    pub fn add_fn_attribute(self, a: Attr) {
        // SAFETY: see module docs.
        unsafe { LLVMAddAttributeAtIndex(self.0, FUNCTION_INDEX, a.0) }
    }
    /// The value of string attribute `key` of a function.
    pub fn fn_string_attr(self, key: &str) -> Option<String> {
        // SAFETY: see module docs; the key is passed by pointer and length,
        // and the value is read with the length LLVM gives.
        unsafe {
            let a = LLVMGetStringAttributeAtIndex(
                self.0,
                FUNCTION_INDEX,
                key.as_ptr() as *const _,
                key.len() as u32,
            );
            if a.is_null() {
                return None;
            }
            let mut len = 0;
            let p = LLVMGetStringAttributeValue(a, &mut len);
            Some(owned(p, len as usize))
        }
    }
    /// Whether function `self` has string attribute `key` at `idx`.
    pub fn has_string_attr_at(self, idx: u32, key: &str) -> bool {
        // SAFETY: see module docs; only called on functions; the key is
        // passed by pointer and length.
        unsafe {
            !LLVMGetStringAttributeAtIndex(self.0, idx, key.as_ptr() as *const _, key.len() as u32)
                .is_null()
        }
    }
    /// A function's attributes at `idx` (FUNCTION_INDEX, 0 for the result,
    /// 1.. for parameters).
    pub fn attributes_at(self, idx: u32) -> Vec<LLVMAttributeRef> {
        // SAFETY: see module docs; only called on functions, and the array
        // is sized by LLVM's own count.
        unsafe {
            let n = LLVMGetAttributeCountAtIndex(self.0, idx) as usize;
            let mut attrs = vec![std::ptr::null_mut(); n];
            LLVMGetAttributesAtIndex(self.0, idx, attrs.as_mut_ptr());
            attrs
        }
    }
    pub fn has_fn_enum_attr(self, kind: u32) -> bool {
        // SAFETY: see module docs.
        unsafe { !LLVMGetEnumAttributeAtIndex(self.0, FUNCTION_INDEX, kind).is_null() }
    }
    pub fn linkage(self) -> inkwell::llvm_sys::LLVMLinkage {
        // SAFETY: see module docs.
        unsafe { LLVMGetLinkage(self.0) }
    }
    pub fn set_linkage(self, l: inkwell::llvm_sys::LLVMLinkage) {
        // SAFETY: see module docs.
        unsafe { LLVMSetLinkage(self.0, l) }
    }
    pub fn section(self) -> Option<String> {
        // SAFETY: see module docs.
        let p = unsafe { LLVMGetSection(self.0) };
        if p.is_null() {
            return None;
        }
        // SAFETY: LLVM returns a NUL-terminated string it owns.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        (!s.is_empty()).then_some(s)
    }
    /// Data emitted right before the function's entry (LLVM "prefix data").
    pub fn set_prefix_data(self, data: Val) {
        // SAFETY: see module docs.
        unsafe { LLVMSetPrefixData(self.0, data.0) }
    }
    pub fn set_section(self, s: &str) {
        let c = cstr(s);
        // SAFETY: see module docs; LLVM copies the string.
        unsafe { LLVMSetSection(self.0, c.as_ptr()) }
    }
    pub fn set_unnamed_addr_none(self) {
        // SAFETY: see module docs.
        unsafe {
            LLVMSetUnnamedAddress(
                self.0,
                inkwell::llvm_sys::LLVMUnnamedAddr::LLVMNoUnnamedAddr,
            )
        }
    }
    pub fn is_global_constant(self) -> bool {
        // SAFETY: see module docs; only called on global variables.
        unsafe { LLVMIsGlobalConstant(self.0) != 0 }
    }
    pub fn is_thread_local(self) -> bool {
        // SAFETY: see module docs; only called on global variables.
        unsafe { LLVMIsThreadLocal(self.0) != 0 }
    }
    /// A global variable's initializer.
    pub fn initializer(self) -> Option<Val> {
        if !self.is_global_variable() {
            return None;
        }
        // SAFETY: see module docs; a global variable.
        let init = unsafe { LLVMGetInitializer(self.0) };
        (!init.is_null()).then_some(Val(init))
    }
    /// The entries of a constant global array defined here (`static const
    /// op_fn ops[] = {...}`), or None.
    pub fn constant_array_entries(self) -> Option<Vec<Val>> {
        if !self.is_global_variable() || !self.is_global_constant() {
            return None;
        }
        // SAFETY: see module docs; a global variable.
        let init = unsafe { LLVMGetInitializer(self.0) };
        // SAFETY: as above; `init` is checked before use.
        if init.is_null() || unsafe { LLVMIsAConstantArray(init) }.is_null() {
            return None;
        }
        let init = Val(init);
        Some(init.operands().collect())
    }
    /// The block of `f` this constant is the address of (`blockaddress`).
    pub fn block_address_in(self, f: Val) -> Option<Block> {
        self.block_address()
            .filter(|(g, _)| *g == f)
            .map(|(_, b)| b)
    }
    /// The function and block this constant is the address of
    /// (`blockaddress`).
    pub fn block_address(self) -> Option<(Val, Block)> {
        // SAFETY: see module docs; kind-checked before the block queries.
        unsafe {
            (!LLVMIsABlockAddress(self.0).is_null()).then(|| {
                (
                    Val(LLVMGetBlockAddressFunction(self.0)),
                    Block(LLVMGetBlockAddressBasicBlock(self.0)),
                )
            })
        }
    }
    /// Whether a constant is null (or zero).
    pub fn is_null_constant(self) -> bool {
        // SAFETY: see module docs; only called on constants.
        unsafe { LLVMIsNull(self.0) != 0 }
    }
    /// Makes a global variable writable (or constant again).
    pub fn set_global_constant(self, constant: bool) {
        // SAFETY: see module docs; only called on global variables.
        unsafe { LLVMSetGlobalConstant(self.0, constant as i32) }
    }
    /// The opcode of an instruction or of a constant expression.
    pub fn any_opcode(self) -> Option<LLVMOpcode> {
        // SAFETY: see module docs; each query is guarded by its kind check.
        unsafe {
            if !LLVMIsAConstantExpr(self.0).is_null() {
                return Some(LLVMGetConstOpcode(self.0));
            }
        }
        self.opcode()
    }
    pub fn initializer_is_zero(self) -> bool {
        // SAFETY: see module docs; only called on global variables.
        unsafe {
            let init = LLVMGetInitializer(self.0);
            !init.is_null() && LLVMIsNull(init) != 0
        }
    }
    /// The one index of an `extractvalue` (None for a nested one).
    pub fn extract_index(self) -> Option<u32> {
        // SAFETY: see module docs; only called on extractvalue instructions,
        // whose index list LLVM sizes.
        unsafe { (LLVMGetNumIndices(self.0) == 1).then(|| *LLVMGetIndices(self.0)) }
    }
    /// The source element type of a GEP.
    pub fn gep_source_type(self) -> Ty {
        // SAFETY: see module docs; only called on GEPs.
        Ty(unsafe { LLVMGetGEPSourceElementType(self.0) })
    }
    pub fn allocated_type(self) -> Ty {
        // SAFETY: see module docs; only called on allocas.
        Ty(unsafe { LLVMGetAllocatedType(self.0) })
    }
    pub fn alignment(self) -> u32 {
        // SAFETY: see module docs; only called on allocas, loads, stores and globals.
        unsafe { LLVMGetAlignment(self.0) }
    }
    /// Marks a load or store volatile.
    pub fn set_volatile(self) {
        // SAFETY: see module docs; only called on loads and stores.
        unsafe { LLVMSetVolatile(self.0, 1) }
    }
    pub fn set_alignment(self, a: u32) {
        // SAFETY: see module docs.
        unsafe { LLVMSetAlignment(self.0, a) }
    }
    pub fn const_int_value(self) -> Option<u64> {
        // SAFETY: see module docs; checked to be a ConstantInt first.
        unsafe {
            if LLVMIsAConstantInt(self.0).is_null() {
                None
            } else {
                Some(LLVMConstIntGetZExtValue(self.0))
            }
        }
    }
    /// A ConstantInt's value, sign-extended.
    pub fn const_int_sext(self) -> Option<i64> {
        // SAFETY: see module docs; checked to be a ConstantInt first.
        unsafe {
            if LLVMIsAConstantInt(self.0).is_null() {
                None
            } else {
                Some(LLVMConstIntGetSExtValue(self.0))
            }
        }
    }
    /// Whether this load or store is volatile.
    pub fn is_volatile(self) -> bool {
        // SAFETY: see module docs; callers pass loads and stores.
        unsafe { LLVMGetVolatile(self.0) != 0 }
    }
    /// Whether this load or store is atomic.
    pub fn is_atomic(self) -> bool {
        // SAFETY: see module docs; callers pass loads and stores.
        unsafe {
            LLVMGetOrdering(self.0)
                != inkwell::llvm_sys::LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic
        }
    }
    /// An `icmp`'s predicate.
    pub fn icmp_predicate(self) -> Option<LLVMIntPredicate> {
        // SAFETY: see module docs; checked to be an icmp first.
        unsafe {
            if LLVMIsAICmpInst(self.0).is_null() {
                None
            } else {
                Some(LLVMGetICmpPredicate(self.0))
            }
        }
    }
    pub fn set_metadata(self, kind: u32, md: Md) {
        // SAFETY: see module docs.
        unsafe { LLVMSetMetadata(self.0, kind, md.0) }
    }
}

impl Block {
    pub fn name(self) -> String {
        // SAFETY: see module docs.
        let p = unsafe { LLVMGetBasicBlockName(self.0) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: LLVM returns a NUL-terminated string it owns.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
    pub fn first(self) -> Option<Val> {
        // SAFETY: see module docs.
        let v = unsafe { LLVMGetFirstInstruction(self.0) };
        (!v.is_null()).then_some(Val(v))
    }
    pub fn last(self) -> Option<Val> {
        // SAFETY: see module docs.
        let v = unsafe { LLVMGetLastInstruction(self.0) };
        (!v.is_null()).then_some(Val(v))
    }
    pub fn terminator(self) -> Option<Val> {
        // SAFETY: see module docs.
        let v = unsafe { LLVMGetBasicBlockTerminator(self.0) };
        (!v.is_null()).then_some(Val(v))
    }
    pub fn instructions(self) -> Vec<Val> {
        let mut out = Vec::new();
        let mut i = self.first();
        while let Some(v) = i {
            out.push(v);
            i = v.next();
        }
        out
    }
    pub fn phis(self) -> Vec<Val> {
        self.instructions()
            .into_iter()
            .take_while(|i| i.is_phi())
            .collect()
    }
    /// The first instruction that is not a phi.
    pub fn first_non_phi(self) -> Option<Val> {
        self.instructions().into_iter().find(|i| !i.is_phi())
    }
    pub fn successors(self) -> Vec<Block> {
        let Some(t) = self.terminator() else {
            return Vec::new();
        };
        // SAFETY: see module docs; `t` is a terminator.
        unsafe {
            let n = LLVMGetNumSuccessors(t.0);
            (0..n).map(|i| Block(LLVMGetSuccessor(t.0, i))).collect()
        }
    }
    pub fn as_value(self) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBasicBlockAsValue(self.0) })
    }
    pub fn parent(self) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMGetBasicBlockParent(self.0) })
    }
    pub fn next_block(self) -> Option<Block> {
        // SAFETY: see module docs.
        let b = unsafe { LLVMGetNextBasicBlock(self.0) };
        (!b.is_null()).then_some(Block(b))
    }
    /// Deletes the block, which nothing may reference any more.
    pub fn delete(self) {
        // SAFETY: see module docs.
        unsafe { LLVMDeleteBasicBlock(self.0) }
    }
    pub fn move_after(self, other: Block) {
        // SAFETY: see module docs.
        unsafe { LLVMMoveBasicBlockAfter(self.0, other.0) }
    }
    pub fn move_before(self, other: Block) {
        // SAFETY: see module docs.
        unsafe { LLVMMoveBasicBlockBefore(self.0, other.0) }
    }
}

/// Module-level context for building: types and constants.
pub struct Ctx {
    ctx: LLVMContextRef,
    module: LLVMModuleRef,
}

impl Ctx {
    pub fn new(module: &inkwell::module::Module) -> Ctx {
        let module = module.as_mut_ptr();
        // SAFETY: the module is alive for the borrow; see module docs.
        let ctx = unsafe { LLVMGetModuleContext(module) };
        Ctx { ctx, module }
    }
    pub fn i1(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMInt1TypeInContext(self.ctx) })
    }
    pub fn i8(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMInt8TypeInContext(self.ctx) })
    }
    pub fn i32(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMInt32TypeInContext(self.ctx) })
    }
    pub fn i64(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMInt64TypeInContext(self.ctx) })
    }
    pub fn fp128(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMFP128TypeInContext(self.ctx) })
    }
    pub fn int(&self, bits: u32) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMIntTypeInContext(self.ctx, bits) })
    }
    pub fn vector(&self, elem: Ty, n: u32) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMVectorType(elem.0, n) })
    }
    pub fn ptr(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMPointerTypeInContext(self.ctx, 0) })
    }
    pub fn void(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMVoidTypeInContext(self.ctx) })
    }
    pub fn token(&self) -> Ty {
        // SAFETY: see module docs.
        Ty(unsafe { LLVMTokenTypeInContext(self.ctx) })
    }
    pub fn fn_type(&self, ret: Ty, params: &[Ty], vararg: bool) -> Ty {
        let mut p: Vec<_> = params.iter().map(|t| t.0).collect();
        // SAFETY: see module docs; the slice outlives the call.
        Ty(unsafe { LLVMFunctionType(ret.0, p.as_mut_ptr(), p.len() as u32, vararg as i32) })
    }
    pub fn const_int(&self, ty: Ty, v: u64) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMConstInt(ty.0, v, 0) })
    }
    /// `trunc (sub (ptrtoint to), (ptrtoint from))` to i32: a 32-bit
    /// relative reference, which the assembler resolves or relocates.
    pub fn const_rel32(&self, to: Val, from: Val) -> Val {
        let i64 = self.i64();
        // SAFETY: see module docs.
        Val(unsafe {
            LLVMConstTrunc(
                LLVMConstSub(
                    LLVMConstPtrToInt(to.0, i64.0),
                    LLVMConstPtrToInt(from.0, i64.0),
                ),
                self.i32().0,
            )
        })
    }
    /// A packed constant struct of `vals`.
    pub fn const_packed_struct(&self, vals: &[Val]) -> Val {
        let mut v: Vec<_> = vals.iter().map(|x| x.0).collect();
        // SAFETY: see module docs; the slice outlives the call.
        Val(unsafe { LLVMConstStructInContext(self.ctx, v.as_mut_ptr(), v.len() as u32, 1) })
    }
    pub fn null(&self, ty: Ty) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMConstNull(ty.0) })
    }
    pub fn poison(&self, ty: Ty) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMGetPoison(ty.0) })
    }
    pub fn function(&self, name: &str) -> Option<Val> {
        let c = cstr(name);
        // SAFETY: see module docs.
        let f = unsafe { LLVMGetNamedFunction(self.module, c.as_ptr()) };
        (!f.is_null()).then_some(Val(f))
    }
    /// Finds or declares a function.
    pub fn declare(&self, name: &str, ty: Ty) -> Val {
        if let Some(f) = self.function(name) {
            return f;
        }
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMAddFunction(self.module, c.as_ptr(), ty.0) })
    }
    pub fn global(&self, name: &str) -> Option<Val> {
        let c = cstr(name);
        // SAFETY: see module docs.
        let g = unsafe { LLVMGetNamedGlobal(self.module, c.as_ptr()) };
        (!g.is_null()).then_some(Val(g))
    }
    /// Finds or declares an external global.
    pub fn declare_global(&self, name: &str, ty: Ty, thread_local: bool) -> Val {
        if let Some(g) = self.global(name) {
            return g;
        }
        let c = cstr(name);
        // SAFETY: see module docs.
        unsafe {
            let g = LLVMAddGlobal(self.module, ty.0, c.as_ptr());
            // Programs are linked statically: the definition is in the same
            // executable, so it is addressed directly, not through the GOT
            // (a poll is then one compare with memory), and thread-locals
            // are at a link-time offset from the thread pointer (local-exec:
            // on x86_64 one `%fs:`-relative access, no `%fs:0` load first).
            LLVMSetVisibility(g, inkwell::llvm_sys::LLVMVisibility::LLVMHiddenVisibility);
            if thread_local {
                LLVMSetThreadLocalMode(
                    g,
                    inkwell::llvm_sys::LLVMThreadLocalMode::LLVMLocalExecTLSModel,
                );
            }
            Val(g)
        }
    }
    pub fn globals(&self) -> Vec<Val> {
        let mut out = Vec::new();
        // SAFETY: see module docs.
        unsafe {
            let mut g = LLVMGetFirstGlobal(self.module);
            while !g.is_null() {
                out.push(Val(g));
                g = LLVMGetNextGlobal(g);
            }
        }
        out
    }
    pub fn functions(&self) -> Vec<Val> {
        let mut out = Vec::new();
        // SAFETY: see module docs.
        unsafe {
            let mut f = LLVMGetFirstFunction(self.module);
            while !f.is_null() {
                out.push(Val(f));
                f = LLVMGetNextFunction(f);
            }
        }
        out
    }
    pub fn intrinsic(&self, name: &str, overloads: &[Ty]) -> Val {
        let mut tys: Vec<_> = overloads.iter().map(|t| t.0).collect();
        // SAFETY: see module docs; the name is looked up by bytes and length.
        unsafe {
            let id = LLVMLookupIntrinsicID(name.as_ptr() as *const _, name.len());
            assert!(id != 0, "LLVM has no intrinsic {name}");
            Val(LLVMGetIntrinsicDeclaration(
                self.module,
                id,
                tys.as_mut_ptr(),
                tys.len(),
            ))
        }
    }
    pub fn intrinsic_id(&self, name: &str) -> u32 {
        // SAFETY: see module docs.
        unsafe { LLVMLookupIntrinsicID(name.as_ptr() as *const _, name.len()) }
    }
    pub fn enum_kind(name: &str) -> u32 {
        // SAFETY: the name is passed by pointer and length.
        unsafe { LLVMGetEnumAttributeKindForName(name.as_ptr() as *const _, name.len()) }
    }
    /// Sets string attribute `key` of function `f` to `value`.
    pub fn set_fn_string_attr(&self, f: Val, key: &str, value: &str) {
        // SAFETY: see module docs; key and value are passed by pointer and length.
        unsafe {
            LLVMRemoveStringAttributeAtIndex(
                f.0,
                FUNCTION_INDEX,
                key.as_ptr() as *const _,
                key.len() as u32,
            );
            let a = LLVMCreateStringAttribute(
                self.ctx,
                key.as_ptr() as *const _,
                key.len() as u32,
                value.as_ptr() as *const _,
                value.len() as u32,
            );
            LLVMAddAttributeAtIndex(f.0, FUNCTION_INDEX, a);
        }
    }
    /// A string attribute `key` with an empty value.
    pub fn string_attr(&self, key: &str) -> Attr {
        // SAFETY: see module docs; the key is passed by pointer and length.
        Attr(unsafe {
            LLVMCreateStringAttribute(
                self.ctx,
                key.as_ptr() as *const _,
                key.len() as u32,
                c"".as_ptr(),
                0,
            )
        })
    }
    pub fn enum_attr(&self, name: &str) -> Attr {
        // SAFETY: see module docs.
        Attr(unsafe { LLVMCreateEnumAttribute(self.ctx, Self::enum_kind(name), 0) })
    }
    /// An integer attribute (`align`, `dereferenceable`).
    pub fn int_attr(&self, name: &str, v: u64) -> Attr {
        // SAFETY: see module docs.
        Attr(unsafe { LLVMCreateEnumAttribute(self.ctx, Self::enum_kind(name), v) })
    }
    pub fn type_attr(&self, name: &str, ty: Ty) -> Attr {
        // SAFETY: see module docs.
        Attr(unsafe { LLVMCreateTypeAttribute(self.ctx, Self::enum_kind(name), ty.0) })
    }
    pub fn md_kind(&self, name: &str) -> u32 {
        // SAFETY: see module docs.
        unsafe { LLVMGetMDKindIDInContext(self.ctx, name.as_ptr() as *const _, name.len() as u32) }
    }
    /// `!{!"branch_weights", i32 a, i32 b}` as a value for `set_metadata`.
    pub fn branch_weights(&self, a: u32, b: u32) -> Md {
        let tag = "branch_weights";
        // SAFETY: see module docs; the element array outlives the call.
        unsafe {
            let mut elems = [
                LLVMMDStringInContext2(self.ctx, tag.as_ptr() as *const _, tag.len()),
                LLVMValueAsMetadata(self.const_int(self.i32(), a as u64).0),
                LLVMValueAsMetadata(self.const_int(self.i32(), b as u64).0),
            ];
            let node = LLVMMDNodeInContext2(self.ctx, elems.as_mut_ptr(), elems.len());
            Md(LLVMMetadataAsValue(self.ctx, node))
        }
    }
    /// A copy of defined function `f` named `name`: `function_like` with
    /// `f`'s own type, but internal linkage, and no debug locations (it has no subprogram of its own).
    /// Calls to `f` inside it still call `f`. `None` when `f`'s blocks have
    /// their address taken (`indirectbr`, `callbr`): those addresses would
    /// still point into `f`.
    /// A new function `name` of type `ty` with `f`'s calling convention,
    /// linkage, visibility, alignment, section, personality and attributes
    /// (of the function, its result and its first `nparams` parameters). No body.
    pub fn function_like(&self, f: Val, name: &str, ty: Ty, nparams: u32) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs; `f` is a function of this module and the
        // attribute lists are read with LLVM's own counts.
        unsafe {
            let g = LLVMAddFunction(self.module, c.as_ptr(), ty.0);
            for idx in [FUNCTION_INDEX, 0].into_iter().chain(1..=nparams) {
                for a in f.attributes_at(idx) {
                    LLVMAddAttributeAtIndex(g, idx, a);
                }
            }
            LLVMSetFunctionCallConv(g, LLVMGetFunctionCallConv(f.0));
            LLVMSetLinkage(g, LLVMGetLinkage(f.0));
            LLVMSetVisibility(g, LLVMGetVisibility(f.0));
            LLVMSetAlignment(g, LLVMGetAlignment(f.0));
            let sec = LLVMGetSection(f.0);
            if !sec.is_null() {
                LLVMSetSection(g, sec);
            }
            if LLVMHasPersonalityFn(f.0) != 0 {
                LLVMSetPersonalityFn(g, LLVMGetPersonalityFn(f.0));
            }
            Val(g)
        }
    }
    /// A literal (unnamed) struct type.
    pub fn struct_type(&self, elems: &[Ty]) -> Ty {
        let mut e: Vec<_> = elems.iter().map(|t| t.0).collect();
        // SAFETY: see module docs; the array is sized by its length.
        Ty(unsafe { LLVMStructTypeInContext(self.ctx, e.as_mut_ptr(), e.len() as u32, 0) })
    }
    pub fn clone_function(&self, f: Val, name: &str) -> Option<Val> {
        use std::collections::HashMap;
        let blocks = f.blocks();
        let insts: Vec<Vec<Val>> = blocks.iter().map(|b| b.instructions()).collect();
        // asm goto jumps to blocks the copy could not redirect.
        if insts
            .iter()
            .flatten()
            .any(|i| i.opcode() == Some(LLVMOpcode::LLVMCallBr))
        {
            return None;
        }
        let dbg_intrinsic = |i: &Val| {
            i.is_call() && {
                let c = i.called_operand();
                c.is_function() && c.name().starts_with("llvm.dbg.")
            }
        };
        let assign_id = self.md_kind("DIAssignID");
        // SAFETY: see module docs; `f` is a defined function of this module,
        // every LLVM-C call below gets handles of the kind it expects, and
        // attribute arrays are sized by LLVM's own count.
        unsafe {
            let nparams = LLVMCountParams(f.0);
            let g = self.function_like(f, name, f.function_type(), nparams).0;
            // Internal (which also makes its visibility default).
            LLVMSetLinkage(g, inkwell::llvm_sys::LLVMLinkage::LLVMInternalLinkage);
            let mut map: HashMap<LLVMValueRef, LLVMValueRef> = HashMap::new();
            for i in 0..nparams {
                map.insert(LLVMGetParam(f.0, i), LLVMGetParam(g, i));
            }
            let new_blocks: Vec<Block> = blocks
                .iter()
                .map(|b| {
                    let nb = self.append_block(Val(g), &b.name());
                    map.insert(b.as_value().0, nb.as_value().0);
                    nb
                })
                .collect();
            let b = LLVMCreateBuilderInContext(self.ctx);
            let mut copies = Vec::new();
            for (old, nb) in insts.iter().zip(&new_blocks) {
                LLVMPositionBuilderAtEnd(b, nb.0);
                for &i in old {
                    if dbg_intrinsic(&i) {
                        continue;
                    }
                    let n = if i.is_phi() {
                        LLVMBuildPhi(b, LLVMTypeOf(i.0), c"".as_ptr())
                    } else {
                        let n = LLVMInstructionClone(i.0);
                        LLVMInsertIntoBuilder(b, n);
                        n
                    };
                    inkwell::llvm_sys::debuginfo::LLVMInstructionSetDebugLoc(
                        n,
                        std::ptr::null_mut(),
                    );
                    LLVMSetMetadata(n, assign_id, std::ptr::null_mut());
                    if !i.name().is_empty() {
                        Val(n).set_name(&i.name());
                    }
                    map.insert(i.0, n);
                    copies.push((i, Val(n)));
                }
            }
            LLVMDisposeBuilder(b);
            let copied: Vec<Val> = copies.iter().map(|&(_, n)| n).collect();
            let remap = |v: Val| Val(*map.get(&v.0).unwrap_or(&v.0));
            for (old, new) in copies {
                if old.is_phi() {
                    for (v, from) in old.incoming() {
                        let to = Block(LLVMValueAsBasicBlock(remap(from.as_value()).0));
                        new.add_incoming(remap(v), to);
                    }
                } else {
                    for j in 0..new.num_operands() {
                        let o = new.operand(j);
                        let m = remap(o);
                        if m != o {
                            new.set_operand(j, m);
                        }
                    }
                }
            }
            // Block addresses only matter where an indirectbr jumps to them.
            let jumps = insts
                .iter()
                .flatten()
                .any(|i| i.opcode() == Some(LLVMOpcode::LLVMIndirectBr));
            if jumps && !self.redirect_block_addresses(f, Val(g), &map, &copied) {
                LLVMDeleteFunction(g);
                return None;
            }
            Some(Val(g))
        }
    }

    /// Makes the copy `g` of `f` jump to its own blocks: an `indirectbr` in
    /// `f` goes to addresses of `f`'s blocks, which computed-goto
    /// interpreters (Lua's `luaV_execute`) load from a constant table. The
    /// copy gets its own table of `g`'s block addresses, and direct block
    /// addresses are renamed. False when some other use of `f`'s block
    /// addresses remains (the copy would jump into `f`): then no copy.
    fn redirect_block_addresses(
        &self,
        f: Val,
        g: Val,
        map: &std::collections::HashMap<LLVMValueRef, LLVMValueRef>,
        copied: &[Val],
    ) -> bool {
        use std::collections::{HashMap, HashSet};
        // SAFETY: see module docs; every constant is inspected with
        // LLVMIsA* before a kind-specific call.
        unsafe {
            let of_f = |c: LLVMValueRef| {
                !LLVMIsABlockAddress(c).is_null() && LLVMGetBlockAddressFunction(c) == f.0
            };
            let to_g = |c: LLVMValueRef| {
                let bb = LLVMBasicBlockAsValue(LLVMGetBlockAddressBasicBlock(c));
                LLVMBlockAddress(g.0, LLVMValueAsBasicBlock(map[&bb]))
            };
            // A constant global whose initializer is an array of f's block
            // addresses (and nulls): the copy's table, the same entries
            // naming g's blocks.
            let table_copy = |v: LLVMValueRef| {
                if LLVMIsAGlobalVariable(v).is_null() || LLVMIsGlobalConstant(v) == 0 {
                    return None;
                }
                let init = LLVMGetInitializer(v);
                if init.is_null() || LLVMIsAConstantArray(init).is_null() {
                    return None;
                }
                let elems: Vec<LLVMValueRef> = (0..LLVMGetNumOperands(init))
                    .map(|k| LLVMGetOperand(init, k as u32))
                    .collect();
                let ours = elems.iter().any(|&e| of_f(e));
                let only = elems.iter().all(|&e| of_f(e) || LLVMIsNull(e) != 0);
                (ours && only).then(|| {
                    elems
                        .into_iter()
                        .map(|e| if of_f(e) { to_g(e) } else { e })
                        .collect::<Vec<_>>()
                })
            };
            let mut tables: HashMap<LLVMValueRef, LLVMValueRef> = HashMap::new();
            for &i in copied {
                for j in 0..i.num_operands() {
                    let o = i.operand(j).0;
                    let new = if of_f(o) {
                        to_g(o)
                    } else if let Some(&t) = tables.get(&o) {
                        t
                    } else if let Some(mut elems) = table_copy(o) {
                        let ty = LLVMGlobalGetValueType(o);
                        let name = cstr(&format!("{}.hc.resume", Val(o).name()));
                        let t = LLVMAddGlobal(self.module, ty, name.as_ptr());
                        LLVMSetInitializer(
                            t,
                            LLVMConstArray2(
                                LLVMGetElementType(ty),
                                elems.as_mut_ptr(),
                                elems.len() as u64,
                            ),
                        );
                        LLVMSetGlobalConstant(t, 1);
                        LLVMSetLinkage(t, inkwell::llvm_sys::LLVMLinkage::LLVMInternalLinkage);
                        LLVMSetAlignment(t, LLVMGetAlignment(o));
                        tables.insert(o, t);
                        t
                    } else {
                        continue;
                    };
                    i.set_operand(j, Val(new));
                }
            }
            // Anything else that still leads to f's blocks (a block address
            // inside a constant expression, a table the pattern above does
            // not cover) would send the copy into f.
            let mut seen = HashSet::new();
            fn leads_to(
                c: LLVMValueRef,
                f: LLVMValueRef,
                seen: &mut HashSet<LLVMValueRef>,
            ) -> bool {
                // SAFETY: as above.
                unsafe {
                    if LLVMIsAConstant(c).is_null() || !seen.insert(c) {
                        return false;
                    }
                    if !LLVMIsABlockAddress(c).is_null() {
                        return LLVMGetBlockAddressFunction(c) == f;
                    }
                    if !LLVMIsAGlobalVariable(c).is_null() {
                        let init = LLVMGetInitializer(c);
                        return !init.is_null() && leads_to(init, f, seen);
                    }
                    if !LLVMIsAGlobalValue(c).is_null() {
                        return false;
                    }
                    (0..LLVMGetNumOperands(c))
                        .any(|k| leads_to(LLVMGetOperand(c, k as u32), f, seen))
                }
            }
            let clean = copied
                .iter()
                .all(|&i| i.operands().all(|o| !leads_to(o.0, f.0, &mut seen)));
            if !clean {
                for t in tables.into_values() {
                    LLVMDeleteGlobal(t);
                }
            }
            clean
        }
    }
    /// The address of block `b` of `f`.
    pub fn block_address(&self, f: Val, b: Block) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBlockAddress(f.0, b.0) })
    }
    /// A new internal, zero-filled, writable global of `len` bytes (writable,
    /// so it is never merged with another constant: its address matters).
    pub fn byte_array(&self, name: &str, len: u64) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        unsafe {
            let ty = LLVMArrayType2(self.i8().0, len);
            let g = LLVMAddGlobal(self.module, ty, c.as_ptr());
            LLVMSetInitializer(g, LLVMConstNull(ty));
            LLVMSetLinkage(g, inkwell::llvm_sys::LLVMLinkage::LLVMInternalLinkage);
            Val(g)
        }
    }
    /// `getelementptr inbounds i8, ptr base, i64 off` as a constant.
    pub fn const_gep_i8(&self, base: Val, off: u64) -> Val {
        let mut idx = [self.const_int(self.i64(), off).0];
        // SAFETY: see module docs; one index into bytes.
        Val(unsafe { LLVMConstInBoundsGEP2(self.i8().0, base.0, idx.as_mut_ptr(), 1) })
    }
    /// A new internal constant global array `name` of `elems` (all of type
    /// `elem`), aligned like `like`.
    pub fn constant_table(&self, name: &str, elem: Ty, elems: &[Val], align: u32) -> Val {
        let mut e: Vec<LLVMValueRef> = elems.iter().map(|v| v.0).collect();
        let c = cstr(name);
        // SAFETY: see module docs; the array is sized by its length.
        unsafe {
            let init = LLVMConstArray2(elem.0, e.as_mut_ptr(), e.len() as u64);
            let t = LLVMAddGlobal(self.module, LLVMTypeOf(init), c.as_ptr());
            LLVMSetInitializer(t, init);
            LLVMSetGlobalConstant(t, 1);
            LLVMSetLinkage(t, inkwell::llvm_sys::LLVMLinkage::LLVMInternalLinkage);
            LLVMSetAlignment(t, align);
            Val(t)
        }
    }
    pub fn append_block(&self, f: Val, name: &str) -> Block {
        let c = cstr(name);
        // SAFETY: see module docs.
        Block(unsafe { LLVMAppendBasicBlockInContext(self.ctx, f.0, c.as_ptr()) })
    }
    pub fn insert_block_before(&self, before: Block, name: &str) -> Block {
        let c = cstr(name);
        // SAFETY: see module docs.
        Block(unsafe { LLVMInsertBasicBlockInContext(self.ctx, before.0, c.as_ptr()) })
    }
    /// Moves every block of `from` into `to` (empty so far), in order.
    pub fn move_blocks(&self, from: Val, to: Val) {
        let anchor = self.append_block(to, "hc.anchor");
        let mut prev = anchor;
        for b in from.blocks() {
            b.move_after(prev);
            prev = b;
        }
        anchor.delete();
    }
    /// A new block right after `after`.
    pub fn block_after(&self, after: Block, name: &str) -> Block {
        let b = self.append_block(after.parent(), name);
        b.move_after(after);
        b
    }
}

/// An instruction builder.
pub struct Builder(LLVMBuilderRef);

impl Drop for Builder {
    fn drop(&mut self) {
        // SAFETY: created by LLVMCreateBuilderInContext and not shared.
        unsafe { LLVMDisposeBuilder(self.0) }
    }
}

impl Builder {
    pub fn new(cx: &Ctx) -> Builder {
        // SAFETY: see module docs.
        Builder(unsafe { LLVMCreateBuilderInContext(cx.ctx) })
    }
    pub fn at_end(&self, b: Block) -> &Self {
        // SAFETY: see module docs.
        unsafe { LLVMPositionBuilderAtEnd(self.0, b.0) };
        self
    }
    pub fn before(&self, i: Val) -> &Self {
        // SAFETY: see module docs.
        unsafe { LLVMPositionBuilderBeforeInstrAndDbgRecords(self.0, i.0) };
        self
    }
    /// Positions after `i` (before the next instruction, or at the block's end).
    pub fn after(&self, i: Val) -> &Self {
        match i.next() {
            Some(n) => self.before(n),
            None => self.at_end(i.block()),
        }
    }
    /// Positions at the first non-phi instruction of `b`.
    pub fn at_start(&self, b: Block) -> &Self {
        match b.first_non_phi() {
            Some(i) => self.before(i),
            None => self.at_end(b),
        }
    }
    pub fn insert(&self, i: Val) {
        // SAFETY: see module docs; `i` was removed from its parent.
        unsafe { LLVMInsertIntoBuilder(self.0, i.0) }
    }
    pub fn load(&self, ty: Ty, ptr: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildLoad2(self.0, ty.0, ptr.0, c.as_ptr()) })
    }
    pub fn volatile_load(&self, ty: Ty, ptr: Val, name: &str) -> Val {
        let l = self.load(ty, ptr, name);
        // SAFETY: see module docs; `l` is a load.
        unsafe { LLVMSetVolatile(l.0, 1) };
        l
    }
    pub fn store(&self, v: Val, ptr: Val) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildStore(self.0, v.0, ptr.0) })
    }
    pub fn alloca(&self, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildAlloca(self.0, ty.0, c.as_ptr()) })
    }
    pub fn gep_i8(&self, cx: &Ctx, base: Val, offset: Val, name: &str) -> Val {
        let c = cstr(name);
        let mut idx = [offset.0];
        // SAFETY: see module docs; the index array outlives the call.
        Val(unsafe { LLVMBuildGEP2(self.0, cx.i8().0, base.0, idx.as_mut_ptr(), 1, c.as_ptr()) })
    }
    pub fn br(&self, dest: Block) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildBr(self.0, dest.0) })
    }
    pub fn cond_br(&self, cond: Val, then: Block, els: Block) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildCondBr(self.0, cond.0, then.0, els.0) })
    }
    pub fn switch(&self, v: Val, default: Block, cases: &[(Val, Block)]) -> Val {
        // SAFETY: see module docs.
        unsafe {
            let s = LLVMBuildSwitch(self.0, v.0, default.0, cases.len() as u32);
            for (c, b) in cases {
                LLVMAddCase(s, c.0, b.0);
            }
            Val(s)
        }
    }
    pub fn icmp(&self, pred: LLVMIntPredicate, a: Val, b: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildICmp(self.0, pred, a.0, b.0, c.as_ptr()) })
    }
    pub fn add(&self, a: Val, b: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildAdd(self.0, a.0, b.0, c.as_ptr()) })
    }
    pub fn and(&self, a: Val, b: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildAnd(self.0, a.0, b.0, c.as_ptr()) })
    }
    pub fn ptr_to_int(&self, v: Val, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildPtrToInt(self.0, v.0, ty.0, c.as_ptr()) })
    }
    pub fn fptrunc(&self, v: Val, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildFPTrunc(self.0, v.0, ty.0, c.as_ptr()) })
    }
    pub fn int_to_ptr(&self, v: Val, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildIntToPtr(self.0, v.0, ty.0, c.as_ptr()) })
    }
    pub fn sub(&self, a: Val, b: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildSub(self.0, a.0, b.0, c.as_ptr()) })
    }
    pub fn mul(&self, a: Val, b: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildMul(self.0, a.0, b.0, c.as_ptr()) })
    }
    /// `freeze`: an arbitrary but fixed value where `v` is poison.
    pub fn freeze(&self, v: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildFreeze(self.0, v.0, c.as_ptr()) })
    }
    pub fn zext(&self, v: Val, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildZExtOrBitCast(self.0, v.0, ty.0, c.as_ptr()) })
    }
    /// Truncation; the value itself if it already has type `ty`.
    pub fn trunc(&self, v: Val, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildTruncOrBitCast(self.0, v.0, ty.0, c.as_ptr()) })
    }
    pub fn bitcast(&self, v: Val, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildBitCast(self.0, v.0, ty.0, c.as_ptr()) })
    }
    pub fn extract_value(&self, agg: Val, i: u32, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildExtractValue(self.0, agg.0, i, c.as_ptr()) })
    }
    pub fn insert_value(&self, agg: Val, v: Val, i: u32, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildInsertValue(self.0, agg.0, v.0, i, c.as_ptr()) })
    }
    pub fn extract_element(&self, vec: Val, i: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildExtractElement(self.0, vec.0, i.0, c.as_ptr()) })
    }
    pub fn insert_element(&self, vec: Val, v: Val, i: Val, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildInsertElement(self.0, vec.0, v.0, i.0, c.as_ptr()) })
    }
    pub fn phi(&self, ty: Ty, name: &str) -> Val {
        let c = cstr(name);
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildPhi(self.0, ty.0, c.as_ptr()) })
    }
    /// `callbr` of an argument-less inline asm statement that may leave
    /// for `indirect` (`asm goto`): control normally goes on to `default`.
    /// `asm` is in LLVM's template syntax (`${0:l}` is `indirect`'s label).
    pub fn callbr_asm(&self, cx: &Ctx, asm: &str, default: Block, indirect: Block) -> Val {
        let (fty, f) = side_effect_asm(cx, asm, "!i");
        let mut dests = [indirect.0];
        // SAFETY: see module docs; the destination array outlives the call.
        Val(unsafe {
            LLVMBuildCallBr(
                self.0,
                fty.0,
                f,
                default.0,
                dests.as_mut_ptr(),
                1,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                0,
                c"".as_ptr(),
            )
        })
    }
    /// A call of a side-effecting asm statement without operands.
    pub fn asm(&self, cx: &Ctx, asm: &str) -> Val {
        let (fty, f) = side_effect_asm(cx, asm, "");
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildCall2(self.0, fty.0, f, std::ptr::null_mut(), 0, c"".as_ptr()) })
    }
    pub fn call(&self, fty: Ty, f: Val, args: &[Val], name: &str) -> Val {
        let c = cstr(name);
        let mut a: Vec<_> = args.iter().map(|v| v.0).collect();
        // SAFETY: see module docs; the argument array outlives the call.
        Val(unsafe {
            LLVMBuildCall2(
                self.0,
                fty.0,
                f.0,
                a.as_mut_ptr(),
                a.len() as u32,
                c.as_ptr(),
            )
        })
    }
    /// A call with one operand bundle `tag(bundle...)`.
    pub fn call_with_bundle(
        &self,
        fty: Ty,
        f: Val,
        args: &[Val],
        tag: &str,
        bundle: &[Val],
        name: &str,
    ) -> Val {
        let c = cstr(name);
        let mut a: Vec<_> = args.iter().map(|v| v.0).collect();
        let mut b: Vec<_> = bundle.iter().map(|v| v.0).collect();
        // SAFETY: see module docs; the arrays outlive the calls and the bundle is
        // disposed after the call instruction copied it.
        unsafe {
            let ob = LLVMCreateOperandBundle(
                tag.as_ptr() as *const _,
                tag.len(),
                b.as_mut_ptr(),
                b.len() as u32,
            );
            let mut obs = [ob];
            let v = LLVMBuildCallWithOperandBundles(
                self.0,
                fty.0,
                f.0,
                a.as_mut_ptr(),
                a.len() as u32,
                obs.as_mut_ptr(),
                1,
                c.as_ptr(),
            );
            LLVMDisposeOperandBundle(ob);
            Val(v)
        }
    }
    /// Ends the block with `return f's callee(f's own arguments)` as a
    /// `musttail` call: `to` must have `from`'s type, calling convention and
    /// attributes (a `Ctx::clone_function` copy), so the callee takes over
    /// `from`'s frame and returns straight to `from`'s caller.
    pub fn forward_call(&self, from: Val, to: Val) -> Val {
        let fty = from.function_type();
        let params = from.params();
        let call = self.call(fty, to, &params, "");
        // SAFETY: see module docs; attribute arrays are sized by LLVM's count.
        unsafe {
            LLVMSetInstructionCallConv(call.0, LLVMGetFunctionCallConv(from.0));
            LLVMSetTailCallKind(
                call.0,
                inkwell::llvm_sys::LLVMTailCallKind::LLVMTailCallKindMustTail,
            );
            // The verifier compares the call site's ABI attributes (byval,
            // sret, inreg, ...) with the caller's.
            for idx in 0..=params.len() as u32 {
                for a in from.attributes_at(idx) {
                    LLVMAddCallSiteAttribute(call.0, idx, a);
                }
            }
            if fty.return_type().is_void() {
                LLVMBuildRetVoid(self.0);
            } else {
                LLVMBuildRet(self.0, call.0);
            }
        }
        call
    }
    /// `indirectbr addr, dests`, built with room for all of them (adding a
    /// destination to a cloned `indirectbr` overruns its operand list: LLVM's
    /// copy does not set the room it has).
    pub fn indirect_br(&self, addr: Val, dests: &[Block]) -> Val {
        // SAFETY: see module docs; the instruction is built with room for
        // every destination added.
        unsafe {
            let br = LLVMBuildIndirectBr(self.0, addr.0, dests.len() as u32);
            for d in dests {
                LLVMAddDestination(br, d.0);
            }
            Val(br)
        }
    }
    pub fn unreachable(&self) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildUnreachable(self.0) })
    }
    pub fn ret(&self, v: Val) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildRet(self.0, v.0) })
    }
    pub fn ret_void(&self) -> Val {
        // SAFETY: see module docs.
        Val(unsafe { LLVMBuildRetVoid(self.0) })
    }
}

/// Where operand `idx` of `user` is used: before `user`, or for a phi at the
/// end of the block the value comes from (before its terminator). A value
/// placed there is available to that use.
pub fn use_point(user: Val, idx: u32) -> Val {
    if user.is_phi() {
        let from = user.incoming()[idx as usize].1;
        from.terminator().expect("a phi's incoming block ends")
    } else {
        user
    }
}

/// Moves `from` and every instruction after it in its block into a new block
/// placed right after, ends the old block with a branch to the new one, and
/// repoints the successors' phis. Returns the new block.
pub fn split_before(cx: &Ctx, from: Val, name: &str) -> Block {
    let old = from.block();
    let new = cx.block_after(old, name);
    let b = Builder::new(cx);
    b.at_end(new);
    let mut cur = Some(from);
    while let Some(i) = cur {
        cur = i.next();
        i.remove_from_parent();
        b.insert(i);
    }
    b.at_end(old).br(new);
    for s in new.successors() {
        retarget_phis(cx, s, old, new);
    }
    new
}

/// Puts a new block on the edge from `from` to `to` (on each of them, when
/// a switch has several): the phis of `to` get one entry from it instead of
/// `from`'s. None when `from` ends in no `br` or `switch`.
pub fn split_edge(cx: &Ctx, from: Block, to: Block, name: &str) -> Option<Block> {
    let t = from.terminator()?;
    if !matches!(
        t.opcode(),
        Some(LLVMOpcode::LLVMBr | LLVMOpcode::LLVMSwitch)
    ) {
        return None;
    }
    let new = cx.block_after(from, name);
    Builder::new(cx).at_end(new).br(to);
    for (i, s) in from.successors().into_iter().enumerate() {
        if s == to {
            t.set_successor(i as u32, new);
        }
    }
    // `new` reaches `to` by one edge, whatever number `from` had.
    rebuild_phis(cx, to, from, new, true);
    Some(new)
}

/// In `block`'s phis, replaces incoming block `from` with `to`. LLVM-C cannot
/// set a phi's incoming block, so each affected phi is rebuilt.
pub fn retarget_phis(cx: &Ctx, block: Block, from: Block, to: Block) {
    rebuild_phis(cx, block, from, to, false);
}

/// `retarget_phis`; with `one_entry`, the entries from `from` (one per
/// edge, all the same value) become a single one from `to`.
fn rebuild_phis(cx: &Ctx, block: Block, from: Block, to: Block, one_entry: bool) {
    let b = Builder::new(cx);
    for phi in block.phis() {
        let inc = phi.incoming();
        if !inc.iter().any(|(_, bb)| *bb == from) {
            continue;
        }
        b.before(phi);
        let name = phi.name();
        let new = b.phi(phi.ty(), "");
        let mut moved = false;
        for (v, bb) in inc {
            if bb != from {
                new.add_incoming(v, bb);
            } else if !(one_entry && moved) {
                new.add_incoming(v, to);
                moved = true;
            }
        }
        phi.replace_all_uses_with(new);
        phi.erase();
        new.set_name(&name);
    }
}

impl Ctx {
    /// ABI size of a type in the module's data layout.
    pub fn abi_size(&self, ty: Ty) -> u64 {
        // SAFETY: see module docs.
        unsafe {
            let dl = inkwell::llvm_sys::target::LLVMGetModuleDataLayout(self.module);
            inkwell::llvm_sys::target::LLVMABISizeOfType(dl, ty.0)
        }
    }

    /// ABI alignment of a type in the module's data layout.
    pub fn abi_align(&self, ty: Ty) -> u32 {
        // SAFETY: see module docs.
        unsafe {
            let dl = inkwell::llvm_sys::target::LLVMGetModuleDataLayout(self.module);
            inkwell::llvm_sys::target::LLVMABIAlignmentOfType(dl, ty.0)
        }
    }
}

/// A side-effecting AT&T-syntax asm statement of type `void ()`.
fn side_effect_asm(cx: &Ctx, asm: &str, constraints: &str) -> (Ty, LLVMValueRef) {
    let fty = cx.fn_type(cx.void(), &[], false);
    // SAFETY: see module docs; the strings outlive the call.
    let f = unsafe {
        LLVMGetInlineAsm(
            fty.0,
            asm.as_ptr().cast(),
            asm.len(),
            constraints.as_ptr().cast(),
            constraints.len(),
            1,
            0,
            inkwell::llvm_sys::LLVMInlineAsmDialect::LLVMInlineAsmDialectATT,
            0,
        )
    };
    (fty, f)
}

/// `[n x elem]`.
pub fn array_type(elem: Ty, n: u64) -> Ty {
    // SAFETY: see module docs.
    Ty(unsafe { LLVMArrayType2(elem.0, n) })
}

/// Prints a function's IR (for diagnostics and tests).
pub fn print(v: Val) -> String {
    // SAFETY: see module docs; the message is disposed after copying.
    unsafe {
        let p = LLVMPrintValueToString(v.0);
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        LLVMDisposeMessage(p);
        s
    }
}
