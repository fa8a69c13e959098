// Switching between fibers without the signal-mask system call of swapcontext: the
// callee-saved registers of the System V x86-64 ABI (rbx, rbp, r12-r15) are pushed on the
// current stack, its stack pointer saved, the other's loaded and its registers popped. The
// kernels change neither the SSE nor the x87 control word, so those are not switched.
#pragma once
#include <cstddef>
#include <cstdint>

#if !defined(__x86_64__)
#error "the CUDA emulator's fibers are written for x86-64"
#endif

extern "C" void emu_switch(void** save_sp, void* load_sp);

asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");

namespace emu {

// The stack pointer of a fiber that starts in `entry` (which must never return) when first
// switched to: six zeroed registers for emu_switch to pop, then `entry` as the return address,
// placed so that `entry` sees the stack of a call (rsp + 8 aligned to 16).
inline void* fiber_stack(char* stack, size_t bytes, void (*entry)()) {
    auto* top = reinterpret_cast<uintptr_t*>(reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t(15));
    *--top = 0;  // the return address `entry` never uses
    *--top = reinterpret_cast<uintptr_t>(entry);
    for (int r = 0; r < 6; ++r) *--top = 0;
    return top;
}

}  // namespace emu
