// The emulator's runtime: runs one launch block by block on the calling thread, every CUDA
// thread of a block a fiber (fiber.h) scheduled round-robin until it finishes or waits at a
// barrier (__syncthreads for the block, a warp collective for its warp). Built without
// -fsanitize=thread; the kernels are built with it, so each of their loads and stores first
// calls a __tsan_* hook here, which
//   - classifies the address: a fiber stack (local), a buffer of the launch (global), this
//     host thread's static TLS (the `__shared__` variables, cuda_emu.h), anything else a fault;
//   - faults on a global access that leaves its buffer or touches no buffer;
//   - checks shared memory for races: two threads touching the same 2 bytes between two
//     __syncthreads, one of them writing;
//   - with statistics on, groups the accesses of one warp into requests (the n-th execution of
//     one access site by each lane) for the bank-conflict and coalescing counts.
// The twins of ldmatrix and cp.async read and write shared memory here, uninstrumented, so they
// pass their accesses to the same checks and counts themselves.
// A fault or race ends the launch with a message (the faulting fiber is never resumed).
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <deque>
#include <link.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "cuda_emu.h"
#include "fiber.h"
#include "mma_layouts.h"
#include "ptx_ops.cuh"
#include "registry.h"

extern const emu::Module* const emu_modules[];

extern "C" {
// A device buffer of the launch: `bytes` at `base` (host memory standing in for the device).
struct EmuRange {
    uint64_t base;
    uint64_t bytes;
};

// Counts of one launch (ffi.rs `EmuStats`). Requests are warp-level: one access site executed
// once by the active lanes of a warp.
struct EmuStats {
    uint64_t shared_loads;       // shared load requests
    uint64_t shared_stores;      // shared store requests
    uint64_t shared_wavefronts;  // bank-conflict-serialised passes over all shared requests
    uint64_t shared_ideal;       // passes without conflicts (1 per 128 bytes a phase moves)
    uint64_t global_requests;
    uint64_t global_sectors;     // 32-byte sectors touched, summed over requests
    uint64_t global_ideal;       // sectors the bytes of each request need at least
    uint64_t mma;                // warp-level mma.sync instructions
};
}

namespace emu {
namespace {

constexpr size_t STACK_BYTES = 256 << 10;
constexpr int WARP = 32;
// Words a lane deposits for a warp collective: at most the 4 A and 2 B registers of an mma.
constexpr size_t SLOT_WORDS = 6;

enum class State { Run, Block, Warp, Done, Fault };

// One cp.async in flight: the 16 source bytes (read at issue), written to `dst` at the
// cp.async.wait_group that covers it.
struct AsyncCopy {
    void* dst;
    unsigned char bytes[16];
};

struct Fiber {
    void* sp = nullptr;  // saved stack pointer while switched out
    State state = State::Run;
    uint3 tid;
    int linear = 0;
    unsigned collectives = 0;                          // warp collectives passed (parity of the slots)
    std::unordered_map<uintptr_t, uint32_t> executed;  // per access site, for request grouping
    std::vector<AsyncCopy> async_open;                 // cp.async since the last commit_group
    std::deque<std::vector<AsyncCopy>> async_groups;   // committed groups, oldest first
};

// One access of a request: lane, address, size.
struct Access {
    int lane;
    uintptr_t addr;
    unsigned size;
};

struct Request {
    bool shared, write;
    std::vector<Access> accesses;
};

// Last accesses of 2 shared bytes, for the race check: epochs count __syncthreads, on from
// one block to the next and one launch to the next on this thread, so old entries never match.
struct Shadow {
    uint64_t write_epoch = 0, read_epoch = 0;
    int writer = -1, reader = -1;
    bool many_readers = false;
};

struct Launch {
    const Entry* entry;
    const EmuArg* args;
    std::vector<EmuRange> buffers;  // sorted by base
    EmuStats* stats;
    uint3 grid, block;
};

// One warp's mma operands as values: A (m, k), B as (n, k), and the collective they belong to
// (the block's barrier epoch and the lanes' collective count, the same for every lane).
struct MmaTiles {
    std::pair<uint64_t, unsigned> of{0, 0};
    float a[16][16], b[8][16];
};

struct Run {
    const Launch* launch;
    uint3 block_idx;
    std::vector<Fiber> fibers;
    char* stacks = nullptr;
    size_t stacks_bytes = 0;
    void* scheduler = nullptr;  // the scheduler's stack pointer while a fiber runs
    Fiber* current = nullptr;
    std::string error;
    uintptr_t tls_lo = 0, tls_hi = 0;
    // Warp exchange slots, two generations (a collective's parity) per warp, SLOT_WORDS per
    // lane: a shuffled word, or the fragments of an mma.
    std::vector<uint32_t> slots;
    // The A and B tiles of each warp's latest mma, decoded once by its first lane to resume.
    std::vector<MmaTiles> mma_tiles;
    std::map<std::tuple<int, uintptr_t, uint32_t>, Request> requests;
};

thread_local Run* run = nullptr;
thread_local uint64_t epoch = 1;
// One entry per 2 bytes of this thread's static TLS (`Run::tls_lo` on).
thread_local std::vector<Shadow> shadow;

Fiber& self() { return *run->current; }

int lane_of(const Fiber& f) { return f.linear % WARP; }
int warp_of(const Fiber& f) { return f.linear / WARP; }

// Ends the current fiber's launch with `message`: never returns.
[[noreturn]] void fault(const std::string& message) {
    Fiber& f = self();
    if (run->error.empty()) {
        char where[96];
        std::snprintf(where, sizeof where, " (block %u,%u,%u thread %u)", run->block_idx.x, run->block_idx.y,
                      run->block_idx.z, f.tid.x);
        run->error = message + where;
    }
    f.state = State::Fault;
    emu_switch(&f.sp, run->scheduler);
    __builtin_unreachable();
}

void wait(State state) {
    Fiber& f = self();
    f.state = state;
    emu_switch(&f.sp, run->scheduler);
}

// The static TLS of this thread, where thread_local (so `__shared__`) variables live: x86-64
// places it just below the thread pointer, at most the sum of the PT_TLS segments' sizes.
void tls_window(uintptr_t& lo, uintptr_t& hi) {
    size_t bytes = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* total) {
            for (int i = 0; i < info->dlpi_phnum; ++i)
                if (info->dlpi_phdr[i].p_type == PT_TLS)
                    *static_cast<size_t*>(total) += info->dlpi_phdr[i].p_memsz + info->dlpi_phdr[i].p_align;
            return 0;
        },
        &bytes);
    hi = reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
    lo = hi - bytes;
}

void race_check(uintptr_t addr, unsigned size, bool write) {
    const int me = self().linear;
    for (uintptr_t a = addr & ~uintptr_t(1); a < addr + size; a += 2) {
        Shadow& s = shadow[(a - run->tls_lo) / 2];
        const bool written = s.write_epoch == epoch && s.writer != me;
        const bool read = s.read_epoch == epoch && (s.many_readers || s.reader != me);
        if (written || (write && read)) {
            char msg[200];
            std::snprintf(msg, sizeof msg,
                          "shared-memory race: thread %d %s %zu bytes at shared+%zu that thread %d %s since the last "
                          "__syncthreads",
                          me, write ? "writes" : "reads", static_cast<size_t>(size), static_cast<size_t>(a - run->tls_lo),
                          written ? s.writer : s.reader, written ? "wrote" : "read");
            fault(msg);
        }
        if (write) {
            s.write_epoch = epoch;
            s.writer = me;
        } else if (s.read_epoch != epoch) {
            s.read_epoch = epoch;
            s.reader = me;
            s.many_readers = false;
        } else if (s.reader != me) {
            s.many_readers = true;
        }
    }
}

void record(bool shared, uintptr_t addr, unsigned size, bool write, uintptr_t pc) {
    Fiber& f = self();
    const uint32_t n = f.executed[pc]++;
    Request& r = run->requests[{warp_of(f), pc, n}];
    r.shared = shared;
    r.write = write;
    r.accesses.push_back({lane_of(f), addr, size});
}

void access(const void* p, unsigned size, bool write, uintptr_t pc) {
    if (run == nullptr || run->current == nullptr) return;
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (a >= reinterpret_cast<uintptr_t>(run->stacks) && a < reinterpret_cast<uintptr_t>(run->stacks) + run->stacks_bytes)
        return;  // a local of some thread
    const auto& buffers = run->launch->buffers;
    auto next = std::upper_bound(buffers.begin(), buffers.end(), a, [](uintptr_t x, const EmuRange& r) { return x < r.base; });
    const bool in_tls = a >= run->tls_lo && a < run->tls_hi;
    if (next != buffers.begin() && a < std::prev(next)->base + std::prev(next)->bytes) {
        const EmuRange& b = *std::prev(next);
        if (a + size > b.base + b.bytes) {
            char msg[160];
            std::snprintf(msg, sizeof msg, "global %s of %u bytes at offset %zu runs past the end of a %zu-byte buffer",
                          write ? "store" : "load", size, static_cast<size_t>(a - b.base), static_cast<size_t>(b.bytes));
            fault(msg);
        }
        if (run->launch->stats) record(false, a, size, write, pc);
    } else if (in_tls) {
        race_check(a, size, write);
        if (run->launch->stats) record(true, a, size, write, pc);
    } else {
        char msg[120];
        std::snprintf(msg, sizeof msg, "global %s of %u bytes at address 0x%zx, inside no buffer of the launch",
                      write ? "store" : "load", size, static_cast<size_t>(a));
        fault(msg);
    }
}

// Shared memory serves a warp's request in phases (all 32 lanes for accesses up to 4 bytes,
// half warps for 8, quarter warps for 16); within a phase each of the 32 banks (4-byte words,
// bank = word % 32) delivers one word per pass, broadcasting to lanes reading the same word.
// Passes of a phase = the most distinct words any bank holds.
void shared_passes(const Request& r, uint64_t& passes, uint64_t& ideal) {
    const unsigned size = r.accesses.front().size;
    const int lanes_per_phase = size <= 4 ? 32 : size == 8 ? 16 : 8;
    for (int phase = 0; phase < WARP / lanes_per_phase; ++phase) {
        std::set<uintptr_t> words[32];
        for (const Access& a : r.accesses) {
            if (a.lane / lanes_per_phase != phase) continue;
            for (uintptr_t w = a.addr / 4; w < (a.addr + a.size + 3) / 4; ++w) words[w % 32].insert(w);
        }
        size_t most = 0;
        for (const auto& b : words) most = std::max(most, b.size());
        if (most == 0) continue;
        passes += most;
        ideal += 1;
    }
}

// Sectors: the distinct 32-byte segments a request touches; ideal: its distinct bytes / 32.
void global_sectors(const Request& r, uint64_t& sectors, uint64_t& ideal) {
    std::set<uintptr_t> touched, bytes;
    for (const Access& a : r.accesses) {
        for (uintptr_t s = a.addr / 32; s <= (a.addr + a.size - 1) / 32; ++s) touched.insert(s);
        for (uintptr_t b = a.addr; b < a.addr + a.size; ++b) bytes.insert(b);
    }
    sectors += touched.size();
    ideal += (bytes.size() + 31) / 32;
}

void fold_requests(EmuStats& s) {
    for (const auto& [key, r] : run->requests) {
        if (r.shared) {
            (r.write ? s.shared_stores : s.shared_loads) += 1;
            shared_passes(r, s.shared_wavefronts, s.shared_ideal);
        } else {
            s.global_requests += 1;
            global_sectors(r, s.global_sectors, s.global_ideal);
        }
    }
    run->requests.clear();
}

// A fiber's life: the kernel, then back to the scheduler for good.
void fiber_main() {
    run->launch->entry->call(run->launch->args);
    Fiber& f = self();
    f.state = State::Done;
    emu_switch(&f.sp, run->scheduler);
    __builtin_unreachable();
}

// Releases waiting fibers whose barrier is complete; false when none could be (a deadlock).
bool release() {
    auto& fibers = run->fibers;
    bool any = false;
    const bool block_ready = std::all_of(fibers.begin(), fibers.end(), [](const Fiber& f) {
        return f.state == State::Block || f.state == State::Done;
    });
    if (block_ready) {
        for (Fiber& f : fibers)
            if (f.state == State::Block) f.state = State::Run, any = true;
        epoch += 1;
    }
    for (size_t w = 0; w * WARP < fibers.size(); ++w) {
        auto first = fibers.begin() + w * WARP, last = fibers.begin() + std::min(fibers.size(), (w + 1) * WARP);
        const bool waiting = std::any_of(first, last, [](const Fiber& f) { return f.state == State::Warp; });
        const bool ready = std::all_of(first, last, [](const Fiber& f) { return f.state == State::Warp || f.state == State::Done; });
        if (waiting && ready)
            for (auto f = first; f != last; ++f)
                if (f->state == State::Warp) f->state = State::Run, any = true;
    }
    return any;
}

// Runs every thread of one block to completion; false (run->error set) on a fault.
bool run_block() {
    auto& fibers = run->fibers;
    const uint3 b = run->launch->block;
    for (size_t i = 0; i < fibers.size(); ++i) {
        Fiber& f = fibers[i];
        f.state = State::Run;
        f.linear = static_cast<int>(i);
        f.tid = {static_cast<unsigned>(i % b.x), static_cast<unsigned>(i / b.x % b.y), static_cast<unsigned>(i / (b.x * b.y))};
        f.collectives = 0;
        f.executed.clear();
        f.async_open.clear();
        f.async_groups.clear();
        f.sp = fiber_stack(run->stacks + i * STACK_BYTES, STACK_BYTES, fiber_main);
    }
    epoch += 1;
    for (;;) {
        for (Fiber& f : fibers) {
            if (f.state != State::Run) continue;
            run->current = &f;
            emu_switch(&run->scheduler, f.sp);
            run->current = nullptr;
            if (f.state == State::Fault) return false;
        }
        if (std::all_of(fibers.begin(), fibers.end(), [](const Fiber& f) { return f.state == State::Done; })) return true;
        if (!release()) {
            run->error = "deadlock: threads wait at __syncthreads and at a warp collective that cannot both complete";
            return false;
        }
    }
}

// Waits until every lane of the warp has deposited into its slot; returns the slot generation.
unsigned warp_collective(unsigned mask) {
    Fiber& f = self();
    const int warp = warp_of(f);
    const size_t first = static_cast<size_t>(warp) * WARP;
    const size_t lanes = std::min<size_t>(WARP, run->fibers.size() - first);
    const unsigned full = lanes == WARP ? 0xffffffffu : (1u << lanes) - 1;
    if (mask != full) fault("warp collective with a partial mask (the emulator supports full warps only)");
    for (size_t l = 0; l < lanes; ++l)
        if (run->fibers[first + l].state == State::Done) fault("warp collective after a lane of the warp exited");
    return f.collectives++ % 2;
}

uint32_t* slot(int warp, unsigned generation) { return &run->slots[(static_cast<size_t>(warp) * 2 + generation) * SLOT_WORDS * WARP]; }

// Tensor-core product of one warp: every lane deposits its fragments, and after the warp
// barrier reads the A and B tiles back through the CuTe layouts (mma_layouts.h) and computes
// its own accumulators, in k order with f32 fma.
// PER_REG values per register: 2 for 16-bit inputs (low half first), 1 for tf32.
template <int K, int PER_REG = 2> void mma(float (&c)[4], const uint32_t* a, const uint32_t* b, float (*to_f32)(uint32_t)) {
    constexpr int A_VALUES = K / 2, B_VALUES = K / 4, A_REGS = A_VALUES / PER_REG, B_REGS = B_VALUES / PER_REG;
    Fiber& f = self();
    const unsigned gen = warp_collective(0xffffffffu);
    const int lane = lane_of(f);
    uint32_t* mine = slot(warp_of(f), gen) + lane * SLOT_WORDS;
    std::copy(a, a + A_REGS, mine);
    std::copy(b, b + B_REGS, mine + A_REGS);
    wait(State::Warp);
    const TvLayout& al = K == 16 ? K16_A : PER_REG == 1 ? TF32_A : ROW_16x8;
    const TvLayout& bl = K == 16 ? K16_B : PER_REG == 1 ? TF32_B : ROW_8x8;
    const auto value = [](const uint32_t* regs, int v) { return PER_REG == 1 ? regs[v] : regs[v / 2] >> (16 * (v % 2)) & 0xffffu; };
    // Every lane needs the whole tiles: the first lane to resume decodes them for the warp (the
    // other lanes of this collective resume before any lane can reach the next one).
    MmaTiles& tiles = run->mma_tiles[warp_of(f)];
    float (&at)[16][16] = tiles.a;
    float (&bt)[8][16] = tiles.b;
    if (tiles.of != std::make_pair(epoch, f.collectives)) {
        tiles.of = {epoch, f.collectives};
        const uint32_t* all = slot(warp_of(f), gen);
        for (int t = 0; t < WARP; ++t) {
            for (int v = 0; v < A_VALUES; ++v) {
                int row, col;
                al.coord(t, v, row, col);
                at[row][col] = to_f32(value(all + t * SLOT_WORDS, v));
            }
            for (int v = 0; v < B_VALUES; ++v) {
                int row, col;
                bl.coord(t, v, row, col);
                bt[row][col] = to_f32(value(all + t * SLOT_WORDS + A_REGS, v));
            }
        }
    }
    for (int v = 0; v < 4; ++v) {
        int m, n;
        ROW_16x8.coord(lane, v, m, n);
        float acc = c[v];
        for (int k = 0; k < K; ++k) acc = std::fma(at[m][k], bt[n][k], acc);
        c[v] = acc;
    }
    if (lane == 0 && run->launch->stats) run->launch->stats->mma += 1;
}

float half_to_f32(uint32_t h) { return static_cast<float>(std::bit_cast<_Float16>(static_cast<uint16_t>(h))); }
float bf16_to_f32(uint32_t h) { return std::bit_cast<float>(h << 16); }
// A tf32 operand: the low 13 mantissa bits of its register are not read.
float tf32_to_f32(uint32_t bits) { return std::bit_cast<float>(bits & 0xffffe000u); }

// cvt.rna.tf32.f32: the magnitude rounded half away from zero at bit 13; Inf and NaN kept.
uint32_t f32_to_tf32(float v) {
    const uint32_t u = std::bit_cast<uint32_t>(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;
    return (u + 0x1000u) & 0xffffe000u;
}

uint16_t f32_to_half(float v) { return std::bit_cast<uint16_t>(static_cast<_Float16>(v)); }
// Round to nearest even on the upper 16 bits; NaN becomes the canonical 0x7fff (PTX cvt.rn).
uint16_t f32_to_bf16(float v) {
    const uint32_t u = std::bit_cast<uint32_t>(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

bool in_shared(uintptr_t a, unsigned size) { return a >= run->tls_lo && a + size <= run->tls_hi; }

// ldmatrix.m8n8.b16 of NUM matrices (PTX ISA, "Warp-level matrix load instruction: ldmatrix"):
// lane 8 i + r reads row r (16 bytes) of matrix i for the warp, as one shared load request
// (the access site `pc`; its quarter-warp phases are the 8 rows of one matrix); after the warp
// barrier lane 4 g + t takes from each matrix i the word of row g at elements 2t, 2t + 1, or
// with `trans` column g at rows 2t (bits 0..15) and 2t + 1.
void ldmatrix(int num, uint32_t* r, const void* row, bool trans, uintptr_t pc) {
    Fiber& f = self();
    const unsigned gen = warp_collective(0xffffffffu);
    const int lane = lane_of(f);
    if (lane < 8 * num) {
        const uintptr_t a = reinterpret_cast<uintptr_t>(row);
        if (!in_shared(a, 16)) fault("ldmatrix row address outside shared memory");
        if (a % 16 != 0) fault("ldmatrix row address not 16-byte aligned");
        access(row, 16, false, pc);
        std::memcpy(slot(warp_of(f), gen) + lane * SLOT_WORDS, row, 16);
    }
    wait(State::Warp);
    const uint32_t* rows = slot(warp_of(f), gen);  // row r of matrix i: lane 8 i + r's 4 words
    auto element = [&](int matrix, int r, int c) { return rows[(8 * matrix + r) * SLOT_WORDS + c / 2] >> (16 * (c % 2)) & 0xffffu; };
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < num; ++i)
        r[i] = trans ? element(i, 2 * t, g) | element(i, 2 * t + 1, g) << 16 : element(i, g, 2 * t) | element(i, g, 2 * t + 1) << 16;
}

// cp.async.cg.shared.global of 16 bytes: checked and counted at issue (a global load request
// at site `pc` and a shared store request at `pc + 1`, which no other site's return address
// can be), the source read then, the destination written when a wait_group covers it.
void cp_async(void* dst, const void* src, uintptr_t pc) {
    const uintptr_t d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
    if (!in_shared(d, 16)) fault("cp.async destination outside shared memory");
    if (in_shared(s, 16) || (s >= reinterpret_cast<uintptr_t>(run->stacks) && s < reinterpret_cast<uintptr_t>(run->stacks) + run->stacks_bytes))
        fault("cp.async source outside global memory");
    if (d % 16 != 0 || s % 16 != 0) fault("cp.async of 16 bytes at an address not 16-byte aligned");
    access(src, 16, false, pc);
    access(dst, 16, true, pc + 1);
    AsyncCopy c{dst, {}};
    std::memcpy(c.bytes, src, 16);
    self().async_open.push_back(c);
}

void cp_async_commit() {
    Fiber& f = self();
    f.async_groups.push_back(std::move(f.async_open));
    f.async_open.clear();
}

// Completes the thread's oldest committed groups until at most `n` remain; each write lands
// now, so it races with any other thread's access since the last __syncthreads.
void cp_async_wait(int n) {
    Fiber& f = self();
    while (f.async_groups.size() > static_cast<size_t>(n)) {
        for (const AsyncCopy& c : f.async_groups.front()) {
            race_check(reinterpret_cast<uintptr_t>(c.dst), 16, true);
            std::memcpy(c.dst, c.bytes, 16);
        }
        f.async_groups.pop_front();
    }
}

}  // namespace

uint3 thread_idx() { return self().tid; }
uint3 block_idx() { return run->block_idx; }
uint3 block_dim() { return run->launch->block; }
uint3 grid_dim() { return run->launch->grid; }

void syncthreads() { wait(State::Block); }

unsigned shfl_xor(unsigned mask, unsigned bits, int lane_mask) {
    Fiber& f = self();
    const unsigned gen = warp_collective(mask);
    uint32_t* words = slot(warp_of(f), gen);
    words[lane_of(f) * SLOT_WORDS] = bits;
    wait(State::Warp);
    return words[(lane_of(f) ^ lane_mask) * SLOT_WORDS];
}

}  // namespace emu

// The twins of kernels/ptx_ops.cuh.
float cvt_f32_f16(u16 h) { return emu::half_to_f32(h); }
u16 cvt_rn_f16_f32(float v) { return emu::f32_to_half(v); }
u16 cvt_rn_bf16_f32(float v) { return emu::f32_to_bf16(v); }
u32 cvt_rn_f16x2_f32(float lo, float hi) { return emu::f32_to_half(lo) | static_cast<u32>(emu::f32_to_half(hi)) << 16; }
u32 cvt_rn_bf16x2_f32(float lo, float hi) { return emu::f32_to_bf16(lo) | static_cast<u32>(emu::f32_to_bf16(hi)) << 16; }
void mma_m16n8k16_f16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    const u32 b[2] = {b0, b1};
    emu::mma<16>(c, a, b, emu::half_to_f32);
}
void mma_m16n8k16_bf16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    const u32 b[2] = {b0, b1};
    emu::mma<16>(c, a, b, emu::bf16_to_f32);
}
void mma_m16n8k8_f16(float (&c)[4], u32 a0, u32 a1, u32 b0) {
    const u32 a[2] = {a0, a1};
    emu::mma<8>(c, a, &b0, emu::half_to_f32);
}
void mma_m16n8k8_bf16(float (&c)[4], u32 a0, u32 a1, u32 b0) {
    const u32 a[2] = {a0, a1};
    emu::mma<8>(c, a, &b0, emu::bf16_to_f32);
}
u32 cvt_rna_tf32_f32(float v) { return emu::f32_to_tf32(v); }
void mma_m16n8k8_tf32(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    const u32 b[2] = {b0, b1};
    emu::mma<8, 1>(c, a, b, emu::tf32_to_f32);
}

#define LDMATRIX(n)                                                                                          \
    void ldmatrix_x##n(u32(&r)[n], const void* row) {                                                      \
        emu::ldmatrix(n, r, row, false, (uintptr_t)__builtin_return_address(0));                            \
    }                                                                                                        \
    void ldmatrix_x##n##_trans(u32(&r)[n], const void* row) {                                              \
        emu::ldmatrix(n, r, row, true, (uintptr_t)__builtin_return_address(0));                             \
    }
LDMATRIX(1)
LDMATRIX(2)
LDMATRIX(4)
void cp_async_cg_16(void* shared, const void* global) { emu::cp_async(shared, global, (uintptr_t)__builtin_return_address(0)); }
void cp_async_commit_group() { emu::cp_async_commit(); }
void cp_async_wait_group_n(int n) { emu::cp_async_wait(n); }
// PTX ISA: cp.async.wait_all is cp.async.commit_group followed by cp.async.wait_group 0.
void cp_async_wait_all() {
    emu::cp_async_commit();
    emu::cp_async_wait(0);
}

// The -fsanitize=thread hooks: every load and store of kernel code, with its access site.
#define HOOK(kind, n, write)                                                                                          \
    extern "C" void __tsan_##kind##n(void* p) { emu::access(p, n, write, (uintptr_t)__builtin_return_address(0)); } \
    extern "C" void __tsan_unaligned_##kind##n(void* p) {                                                             \
        emu::access(p, n, write, (uintptr_t)__builtin_return_address(0));                                             \
    }
#define HOOKS(n) HOOK(read, n, false) HOOK(write, n, true)
HOOKS(1)
HOOKS(2)
HOOKS(4)
HOOKS(8)
HOOKS(16)
extern "C" void __tsan_read_range(void* p, size_t n) {
    emu::access(p, static_cast<unsigned>(n), false, (uintptr_t)__builtin_return_address(0));
}
extern "C" void __tsan_write_range(void* p, size_t n) {
    emu::access(p, static_cast<unsigned>(n), true, (uintptr_t)__builtin_return_address(0));
}
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_init() {}

namespace {
const emu::Entry* find(const char* module, const char* function) {
    for (const emu::Module* const* m = emu_modules; *m; ++m) {
        if (std::strcmp((*m)->name, module) != 0) continue;
        for (const emu::Entry* e = (*m)->entries; e->name; ++e)
            if (std::strcmp(e->name, function) == 0) return e;
    }
    return nullptr;
}

int fail(char* err, size_t err_len, const std::string& message) {
    std::snprintf(err, err_len, "%s", message.c_str());
    return 1;
}
}  // namespace

// Runs `function` of kernels/`module`.cu over `grid` blocks of `block` threads with `args`,
// the device being `buffers`. 0 on success, else 1 with a message in `err`. With `stats`, the
// launch's counts are added to it.
extern "C" int ditrt_emu_launch(const char* module, const char* function, const uint32_t* grid, const uint32_t* block,
                                const EmuArg* args, size_t n_args, const EmuRange* buffers, size_t n_buffers, EmuStats* stats,
                                char* err, size_t err_len) {
    const emu::Entry* entry = find(module, function);
    if (!entry) return fail(err, err_len, std::string("no kernel ") + function + " in module " + module);
    std::string kinds;
    for (size_t i = 0; i < n_args; ++i) kinds += static_cast<char>(args[i].kind);
    if (kinds != entry->params)
        return fail(err, err_len, std::string(function) + ": arguments " + kinds + " for parameters " + entry->params);
    emu::Launch launch{entry, args, std::vector<EmuRange>(buffers, buffers + n_buffers), stats,
                       {grid[0], grid[1], grid[2]}, {block[0], block[1], block[2]}};
    std::sort(launch.buffers.begin(), launch.buffers.end(), [](const EmuRange& a, const EmuRange& b) { return a.base < b.base; });
    const size_t threads = static_cast<size_t>(block[0]) * block[1] * block[2];
    emu::Run r;
    r.launch = &launch;
    r.fibers.resize(threads);
    r.stacks_bytes = threads * emu::STACK_BYTES;
    std::unique_ptr<char[]> stacks(new char[r.stacks_bytes]);
    r.stacks = stacks.get();
    r.slots.assign((threads / emu::WARP + 1) * 2 * emu::SLOT_WORDS * emu::WARP, 0);
    r.mma_tiles.assign(threads / emu::WARP + 1, emu::MmaTiles{});
    emu::tls_window(r.tls_lo, r.tls_hi);
    emu::shadow.resize((r.tls_hi - r.tls_lo) / 2);
    emu::Run* outer = emu::run;
    emu::run = &r;
    bool ok = true;
    for (uint32_t z = 0; ok && z < grid[2]; ++z)
        for (uint32_t y = 0; ok && y < grid[1]; ++y)
            for (uint32_t x = 0; ok && x < grid[0]; ++x) {
                r.block_idx = {x, y, z};
                ok = emu::run_block();
                if (ok && stats) emu::fold_requests(*stats);
            }
    emu::run = outer;
    if (!ok) return fail(err, err_len, std::string(function) + ": " + r.error);
    return 0;
}
