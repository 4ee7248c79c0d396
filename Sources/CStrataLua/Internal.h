// What the C files of CStrataLua share: the engine and the conversions.
#ifndef STRATA_CSTRATALUA_INTERNAL_H
#define STRATA_CSTRATALUA_INTERNAL_H

#include "CStrataLua.h"
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>

/// One Lua VM and the invocation running on it.
struct sl_engine {
    lua_State *L;
    int functions;
    /// Set by sl_engine_kill from any thread; read by the count hook.
    int kill;
    /// The invocation running now (NULL between runs: redis.call refuses).
    sl_run *run;
    /// The protocol the script asked for with redis.setresp (2 by default).
    int resp;
    /// While a library loads: where registered functions go, and the load deadline (ms).
    int loading;
    int64_t load_deadline;
    /// Set before a run on an event loop: the count hook stops the script (`preempted`) so that
    /// it can run again elsewhere; cleared before its first write, after which it cannot.
    int preemptible;
    int preempted;
    /// Redis' rand48 state for math.random.
    uint64_t rand48;
};

/// The engine a VM belongs to (kept in the registry).
sl_engine *sl_engine_of(lua_State *L);

/// Pushes the RESP value at `*p` (up to `end`) as Redis converts replies for redis.call;
/// `push` 0 skips it (attributes). Advances `*p`; returns 0 on malformed input.
int sl_push_resp(lua_State *L, const char **p, const char *end, int push);
/// Converts the value on top of the stack into a reply (Redis' rules for the client's protocol
/// and the script's) and pops it.
void sl_write_reply(lua_State *L, sl_buffer *out, int client_resp, int script_resp);
/// Pushes Redis' error table {err="CODE message"} for `text` ("-CODE message" or "message").
void sl_push_error(lua_State *L, const char *text, size_t length);

/// Creates the global `redis` table (the run-time API).
int sl_register_api(lua_State *L);
/// Creates the load-time API of the FUNCTION engine (`redis.register_function`...).
void sl_register_library_api(lua_State *L);

#endif
