#ifndef STRATA_CSTRATALUA_H
#define STRATA_CSTRATALUA_H

// Redis' scripting on Lua 5.1. Every piece of code that can raise a Lua error (lua_error
// longjmps) lives in this C target, behind protected entry points, so an error never crosses a
// Swift frame. Swift is reached only through the plain function pointers in `sl_run`.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A growable byte buffer (malloc'd); Swift fills command replies into one, C the final reply.
typedef struct sl_buffer {
    char *data;
    size_t length;
    size_t capacity;
} sl_buffer;

/// Appends bytes; never raises (aborts only if malloc fails).
void sl_buffer_append(sl_buffer *buffer, const void *bytes, size_t length);
/// Frees the buffer's bytes and empties it.
void sl_buffer_free(sl_buffer *buffer);

/// Runs one command for `redis.call`/`redis.pcall`: `argv[0]` is the name; the RESP reply (an
/// error reply for a refused command) goes into `reply`. `resp` is the script's protocol (2/3).
typedef void (*sl_call_fn)(void *context, int argc, const char *const *argv, const size_t *lengths, int resp,
                           sl_buffer *reply);
/// Writes a `redis.log` line at `level` (0 debug ... 3 warning).
typedef void (*sl_log_fn)(void *context, int level, const char *message, size_t length);

/// Function flags, as `redis.register_function` and the EVAL shebang name them.
enum {
    SL_FLAG_NO_WRITES = 1,
    SL_FLAG_ALLOW_OOM = 2,
    SL_FLAG_ALLOW_STALE = 4,
    SL_FLAG_NO_CLUSTER = 8,
    SL_FLAG_ALLOW_CROSS_SLOT_KEYS = 16,
};

/// One script or function invocation: its callbacks, arguments and the reply it gave.
typedef struct sl_run {
    sl_call_fn call;
    sl_log_fn log;
    void *context;
    /// The protocol of the client the reply goes to (2 or 3).
    int client_resp;
    const char *const *keys;
    const size_t *key_lengths;
    int key_count;
    const char *const *args;
    const size_t *arg_lengths;
    int arg_count;
    /// Named in error replies: the script's SHA-1 or the function's name.
    const char *name;
    /// The RESP reply; `is_error` when it is an error reply.
    sl_buffer reply;
    int is_error;
} sl_run;

/// A function a library registered while loading.
typedef struct sl_function {
    char *name;
    char *description; // NULL: none given
    int flags;
} sl_function;

typedef struct sl_engine sl_engine;

/// A Lua VM set up as Redis sets up its own: the libraries, `redis.*`, the read-only globals.
/// `functions`: the FUNCTION engine's VM (libraries register functions while loading).
sl_engine *sl_engine_new(int functions);
void sl_engine_free(sl_engine *engine);
/// Asks the running script to stop at its next hook (SCRIPT KILL / FUNCTION KILL).
void sl_engine_kill(sl_engine *engine);
/// Whether the next runs may be stopped to run again elsewhere (see `preemptible`), and whether
/// the last one was.
void sl_engine_set_preemptible(sl_engine *engine, int on);
int sl_engine_preempted(sl_engine *engine);
/// Bytes the VM holds (USED_MEMORY_VM-style reporting).
size_t sl_engine_memory(sl_engine *engine);

/// Compiles an EVAL script body under `name` (`f_<sha>`). 0: done; else the error message
/// ("Error compiling script (new function): ...") is in `error`.
int sl_eval_compile(sl_engine *engine, const char *name, const char *body, size_t length, sl_buffer *error);
/// Runs the compiled script `name` with `run`'s KEYS and ARGV; the reply is in `run->reply`.
void sl_eval_run(sl_engine *engine, const char *name, sl_run *run);

/// Loads a library's code (after its shebang line) under the registry slot `slot`. 0: done,
/// `*functions`/`*count` (free with sl_functions_free) hold what it registered; else the error
/// message (without "ERR ") is in `error` and nothing is kept.
int sl_library_load(sl_engine *engine, const char *slot, const char *code, size_t length, sl_function **functions,
                    int *count, sl_buffer *error);
/// Drops what is kept under registry name `slot` (a library, or a compiled EVAL script).
void sl_forget(sl_engine *engine, const char *slot);
void sl_functions_free(sl_function *functions, int count);
/// Runs function `function` of the library under `slot`; the reply is in `run->reply`.
void sl_function_run(sl_engine *engine, const char *slot, const char *function, sl_run *run);

/// The SHA-1 of `bytes` as 40 lowercase hex digits and a NUL.
void sl_sha1hex(char out[41], const void *bytes, size_t length);

#ifdef __cplusplus
}
#endif

#endif
