// The kernels of one module as the emulator calls them: build.rs generates, per kernels/*.cu,
// a translation unit that includes the .cu and lists its `extern "C"` kernels with EMU_ENTRY.
// Arguments arrive as the launches of src/backend/cuda/launch.rs pass them: every integer and
// pointer a u64, every float an f32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

extern "C" {
// One kernel argument (src/backend/cuda/emulated/ffi.rs `EmuArg`): kind 'u' (u64) or 'f' (f32).
struct EmuArg {
    uint32_t kind;
    uint64_t u;
    float f;
};
}

namespace emu {

struct Entry {
    const char* name;
    const char* params;  // one kind letter per parameter: 'u' or 'f'
    void (*call)(const EmuArg*);
};

struct Module {
    const char* name;
    const Entry* entries;  // ends with a null name
};

template <class P> constexpr char kind_of() {
    static_assert(std::is_pointer_v<P> || std::is_same_v<P, float> || std::is_same_v<P, unsigned long long>,
                  "kernel parameters are pointers, u64 or f32 (kernels/common.cuh)");
    return std::is_same_v<P, float> ? 'f' : 'u';
}

// Reading the arguments is the launch's doing, not the kernel's: not instrumented.
#define EMU_UNINSTRUMENTED __attribute__((no_sanitize_thread))

template <class P> EMU_UNINSTRUMENTED P arg_as(const EmuArg& a) {
    if constexpr (std::is_pointer_v<P>) {
        return reinterpret_cast<P>(static_cast<uintptr_t>(a.u));
    } else if constexpr (std::is_same_v<P, float>) {
        return a.f;
    } else {
        return static_cast<P>(a.u);
    }
}

template <class... P> struct Signature {
    static constexpr char params[] = {kind_of<P>()..., '\0'};
    template <void (*F)(P...), std::size_t... I> EMU_UNINSTRUMENTED static void call(const EmuArg* args, std::index_sequence<I...>) {
        F(arg_as<P>(args[I])...);
    }
};

template <class F> struct SignatureOf;
template <class... P> struct SignatureOf<void (*)(P...)> {
    using type = Signature<P...>;
    static constexpr std::size_t count = sizeof...(P);
};

template <auto F> EMU_UNINSTRUMENTED void call(const EmuArg* args) {
    using S = SignatureOf<decltype(F)>;
    S::type::template call<F>(args, std::make_index_sequence<S::count>{});
}

}  // namespace emu

#define EMU_ENTRY(name, fn) {name, emu::SignatureOf<decltype(&fn)>::type::params, &emu::call<&fn>},
