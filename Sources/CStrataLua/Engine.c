// The Lua VM as Redis 7 sets it up: libraries, the sandbox (read-only globals), the count hook
// that stops a killed script, and the protected entry points Swift calls.
#include "Internal.h"
#include <lua-bitop.h>
#include <lua-cjson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *ENGINE_KEY = "sl.engine";
static const char *API_KEY = "sl.api";          // the table globals are read from now
static const char *GLOBALS_KEY = "sl.globals";  // the run-time globals
static const char *LIBRARY_API_KEY = "sl.library_api";
static const char *LOADING_KEY = "sl.loading";
static const char *READONLY_MARK = "sl_readonly";


sl_engine *sl_engine_of(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, ENGINE_KEY);
    sl_engine *engine = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return engine;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// MARK: Sandbox

static int readonly_error(lua_State *L) { return luaL_error(L, "Attempt to modify a readonly table"); }

/// __index of the globals: the current API table, else Redis' error.
static int global_index(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, API_KEY);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) return 1;
    const char *name = lua_tostring(L, 2);
    return luaL_error(L, "Script attempted to access nonexistent global variable '%s'", name ? name : "?");
}

/// __index of a strict table (the load-time `redis`): its backing table, else Redis' error.
static int strict_index(lua_State *L) {
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    if (!lua_isnil(L, -1)) return 1;
    const char *name = lua_tostring(L, 2);
    return luaL_error(L, "Script attempted to access nonexistent global variable '%s'", name ? name : "?");
}

/// Replaces the table on top of the stack with a read-only view of it; `strict`: reading a
/// missing field is an error.
/// Finishes the metatable on top of the stack (its `__index` set) as a read-only one and sets it
/// on the table below: writes raise, the metatable is hidden, and the table is marked read-only.
static void seal(lua_State *L) {
    lua_pushcfunction(L, readonly_error);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, READONLY_MARK);
    lua_setmetatable(L, -2);
}

static void make_readonly(lua_State *L, int strict) {
    lua_newtable(L);          // proxy
    lua_newtable(L);          // its metatable
    if (strict) {
        lua_pushvalue(L, -3);
        lua_pushcclosure(L, strict_index, 1);
    } else {
        lua_pushvalue(L, -3);
    }
    lua_setfield(L, -2, "__index");
    seal(L);
    lua_remove(L, -2);
}

static int is_readonly(lua_State *L, int index) {
    if (!lua_getmetatable(L, index)) return 0;
    lua_getfield(L, -1, READONLY_MARK);
    int readonly = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return readonly;
}

/// rawset that refuses the read-only tables.
static int safe_rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (is_readonly(L, 1)) return luaL_error(L, "Attempt to modify a readonly table");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int os_clock(lua_State *L) {
    lua_pushnumber(L, ((lua_Number)clock()) / (lua_Number)CLOCKS_PER_SEC);
    return 1;
}

// Redis' rand48 (the same sequence on every platform) for math.random.
static int32_t rand48_next(sl_engine *engine) {
    engine->rand48 = (engine->rand48 * 0x5DEECE66DULL + 0xB) & ((1ULL << 48) - 1);
    return (int32_t)(engine->rand48 >> 17);
}

static int math_random(lua_State *L) {
    sl_engine *engine = sl_engine_of(L);
    lua_Number r = (lua_Number)(rand48_next(engine) % INT32_MAX) / (lua_Number)INT32_MAX;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, r);
        break;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, (lua_Number)(int64_t)(r * u) + 1);
        break;
    }
    case 2: {
        int l = luaL_checkint(L, 1);
        int u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, (lua_Number)(int64_t)(r * (u - l + 1)) + l);
        break;
    }
    default:
        return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int math_randomseed(lua_State *L) {
    sl_engine *engine = sl_engine_of(L);
    engine->rand48 = (((uint64_t)(uint32_t)luaL_checkint(L, 1)) << 16) | 0x330E;
    return 0;
}

/// Redis' pcall: an error table from redis.call is given to the script as its message.
static int redis_pcall(lua_State *L) {
    int argc = lua_gettop(L);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    if (lua_pcall(L, argc - 1, LUA_MULTRET, 0)) {
        lua_remove(L, 1);
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            if (lua_isstring(L, -1)) lua_replace(L, -2);
            else lua_pop(L, 1);
        }
        lua_pushboolean(L, 0);
        lua_insert(L, 1);
    }
    return lua_gettop(L);
}

static void open_library(lua_State *L, const char *name, lua_CFunction open) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

/// Sets up a new VM (run under lua_cpcall): libraries, redis.*, then the read-only globals.
static int setup(lua_State *L) {
    sl_engine *engine = lua_touserdata(L, 1);
    lua_pushlightuserdata(L, engine);
    lua_setfield(L, LUA_REGISTRYINDEX, ENGINE_KEY);

    open_library(L, "", luaopen_base);
    open_library(L, LUA_TABLIBNAME, luaopen_table);
    open_library(L, LUA_STRLIBNAME, luaopen_string);
    open_library(L, LUA_MATHLIBNAME, luaopen_math);
    // Redis' bundled cjson and bit libraries, as globals (Debian's lua-cjson and lua-bitop).
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    lua_setglobal(L, "cjson");
    lua_pushcfunction(L, luaopen_bit);
    lua_call(L, 0, 1);
    lua_setglobal(L, "bit");
    static const char *removed[] = {"dofile", "loadfile", "print", NULL};
    for (const char **name = removed; *name; name++) {
        lua_pushnil(L);
        lua_setglobal(L, *name);
    }
    lua_newtable(L);
    lua_pushcfunction(L, os_clock);
    lua_setfield(L, -2, "clock");
    lua_setglobal(L, "os");
    lua_pushcfunction(L, redis_pcall);
    lua_setglobal(L, "pcall");
    lua_pushcfunction(L, safe_rawset);
    lua_setglobal(L, "rawset");
    lua_getglobal(L, "math");
    lua_pushcfunction(L, math_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, math_randomseed);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
    sl_register_api(L);
    if (engine->functions) sl_register_library_api(L);

    // Globals: every library table read-only, the globals table an empty read-only view.
    static const char *libraries[] = {"string", "math", "table", "os", "coroutine", "redis", "cjson", "bit", NULL};
    for (const char **name = libraries; *name; name++) {
        lua_getglobal(L, *name);
        make_readonly(L, 0);
        lua_setglobal(L, *name);
    }
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, GLOBALS_KEY);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, API_KEY);
    lua_newtable(L);  // the globals' view
    lua_newtable(L);
    lua_pushcfunction(L, global_index);
    lua_setfield(L, -2, "__index");
    seal(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_G");
    lua_replace(L, LUA_GLOBALSINDEX);
    lua_pop(L, 1);
    return 0;
}

sl_engine *sl_engine_new(int functions) {
    sl_engine *engine = calloc(1, sizeof *engine);
    if (!engine) return NULL;
    engine->functions = functions;
    engine->resp = 2;
    engine->rand48 = 0x330E;
    engine->L = luaL_newstate();
    if (!engine->L || lua_cpcall(engine->L, setup, engine) != 0) {
        if (engine->L) lua_close(engine->L);
        free(engine);
        return NULL;
    }
    return engine;
}

void sl_engine_free(sl_engine *engine) {
    if (!engine) return;
    lua_close(engine->L);
    free(engine);
}

void sl_engine_kill(sl_engine *engine) { __atomic_store_n(&engine->kill, 1, __ATOMIC_RELEASE); }

void sl_engine_set_preemptible(sl_engine *engine, int on) { engine->preemptible = on; }

int sl_engine_preempted(sl_engine *engine) { return engine->preempted; }

size_t sl_engine_memory(sl_engine *engine) { return (size_t)lua_gc(engine->L, LUA_GCCOUNT, 0) * 1024; }

// MARK: Running

/// The count hook: stops a killed script, or a library load past its 500 ms.
static void count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sl_engine *engine = sl_engine_of(L);
    const char *message = NULL;
    if (engine->loading) {
        if (now_ms() > engine->load_deadline) message = "FUNCTION LOAD timeout";
    } else if (__atomic_load_n(&engine->kill, __ATOMIC_ACQUIRE)) {
        message = "Script killed by user with SCRIPT KILL...";
    } else if (engine->preemptible) {
        engine->preempted = 1;
        message = "script preempted to run on another thread";
    }
    if (!message) return;
    // Every line from now on raises again, so a pcall in the script cannot swallow it.
    lua_sethook(L, count_hook, LUA_MASKLINE, 0);
    sl_push_error(L, message, strlen(message));
    lua_error(L);
}

/// The message handler: the error as Redis' table, with the script position that raised it.
static int error_handler(lua_State *L) {
    lua_Debug ar;
    int found = lua_getstack(L, 1, &ar) && lua_getinfo(L, "nSl", &ar);
    if (found && strcmp(ar.what, "C") == 0) found = lua_getstack(L, 2, &ar) && lua_getinfo(L, "nSl", &ar);
    if (!lua_istable(L, 1)) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "ERR ");
        switch (lua_type(L, 1)) {
        case LUA_TSTRING:
        case LUA_TNUMBER:
            lua_pushvalue(L, 1);
            luaL_addvalue(&b);
            break;
        case LUA_TNIL:
            luaL_addstring(&b, "nil");
            break;
        case LUA_TBOOLEAN:
            luaL_addstring(&b, lua_toboolean(L, 1) ? "true" : "false");
            break;
        default:
            lua_pushfstring(L, "%s: %p", luaL_typename(L, 1), lua_topointer(L, 1));
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        lua_newtable(L);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "err");
        lua_replace(L, 1);
        lua_settop(L, 1);
    }
    if (found) {
        lua_pushstring(L, ar.source);
        lua_setfield(L, 1, "source");
        lua_pushinteger(L, ar.currentline);
        lua_setfield(L, 1, "line");
    }
    lua_settop(L, 1);
    return 1;
}

static void push_array(lua_State *L, const char *const *items, const size_t *lengths, int count) {
    lua_createtable(L, count, 0);
    for (int i = 0; i < count; i++) {
        lua_pushlstring(L, items[i], lengths[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/// Writes the reply for a failed call: Redis' "<error> script: <name>, on <source>:<line>.".
static void write_failure(lua_State *L, sl_run *run) {
    sl_buffer message = {0};
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "err");
        size_t length = 0;
        const char *text = lua_isstring(L, -1) ? lua_tolstring(L, -1, &length) : NULL;
        if (text) sl_buffer_append(&message, text, length);
        lua_pop(L, 1);
        lua_getfield(L, -1, "source");
        lua_getfield(L, -2, "line");
        if (lua_isstring(L, -2) && lua_isstring(L, -1)) {
            sl_buffer_append(&message, " script: ", 9);
            sl_buffer_append(&message, run->name, strlen(run->name));
            sl_buffer_append(&message, ", on ", 5);
            sl_buffer_append(&message, lua_tostring(L, -2), strlen(lua_tostring(L, -2)));
            sl_buffer_append(&message, ":", 1);
            sl_buffer_append(&message, lua_tostring(L, -1), strlen(lua_tostring(L, -1)));
            sl_buffer_append(&message, ".", 1);
        }
        lua_pop(L, 2);
    } else {
        const char *text = lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
        char line[256];
        int n = snprintf(line, sizeof line, "ERR Error running script %s, %.100s", run->name, text);
        sl_buffer_append(&message, line, (size_t)n);
    }
    sl_buffer_append(&run->reply, "-", 1);
    size_t start = run->reply.length;
    sl_buffer_append(&run->reply, message.data, message.length);
    for (size_t i = start; i < run->reply.length; i++) {
        if (run->reply.data[i] == '\r' || run->reply.data[i] == '\n') run->reply.data[i] = ' ';
    }
    sl_buffer_append(&run->reply, "\r\n", 2);
    sl_buffer_free(&message);
    run->is_error = 1;
    lua_pop(L, 1);
}

/// What a protected entry point works on.
typedef struct invocation {
    sl_engine *engine;
    const char *name;      // registry name of the script, or the library slot
    const char *function;  // the function's name (FCALL); NULL for EVAL
    sl_run *run;
} invocation;

/// Calls the script or function (under lua_cpcall) and converts its result or error.
static int invoke(lua_State *L) {
    invocation *call = lua_touserdata(L, 1);
    sl_run *run = call->run;
    lua_settop(L, 0);
    lua_pushcfunction(L, error_handler);
    if (call->function) {
        lua_getfield(L, LUA_REGISTRYINDEX, call->name);
        if (lua_istable(L, -1)) lua_getfield(L, -1, call->function);
        else lua_pushnil(L);
        lua_remove(L, -2);
    } else {
        lua_getfield(L, LUA_REGISTRYINDEX, call->name);
    }
    if (!lua_isfunction(L, -1)) {
        static const char missing[] = "-ERR Function not found\r\n";
        sl_buffer_append(&run->reply, missing, sizeof missing - 1);
        run->is_error = 1;
        return 0;
    }
    push_array(L, run->keys, run->key_lengths, run->key_count);
    push_array(L, run->args, run->arg_lengths, run->arg_count);
    int status;
    if (call->function) {
        status = lua_pcall(L, 2, 1, 1);
    } else {
        lua_getfield(L, LUA_REGISTRYINDEX, GLOBALS_KEY);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "ARGV");
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "KEYS");
        lua_pop(L, 3);
        status = lua_pcall(L, 0, 1, 1);
    }
    if (status) write_failure(L, run);
    else sl_write_reply(L, &run->reply, run->client_resp, call->engine->resp);
    lua_settop(L, 0);
    return 0;
}

/// Runs `invoke` with the engine set up for one invocation, and cleans up after it.
static void run_protected(sl_engine *engine, invocation *call) {
    sl_run *run = call->run;
    run->reply.length = 0;
    run->is_error = 0;
    engine->run = run;
    engine->resp = 2;
    __atomic_store_n(&engine->kill, 0, __ATOMIC_RELEASE);
    engine->preempted = 0;
    // Every 10,000 instructions: a few microseconds of Lua between checks.
    lua_sethook(engine->L, count_hook, LUA_MASKCOUNT, 10000);
    int status = lua_cpcall(engine->L, invoke, call);
    lua_sethook(engine->L, NULL, 0, 0);
    if (status) {
        const char *text = lua_tostring(engine->L, -1);
        run->reply.length = 0;
        sl_buffer_append(&run->reply, "-ERR ", 5);
        sl_buffer_append(&run->reply, text ? text : "script failure", strlen(text ? text : "script failure"));
        sl_buffer_append(&run->reply, "\r\n", 2);
        run->is_error = 1;
        lua_settop(engine->L, 0);
    }
    engine->run = NULL;
    lua_gc(engine->L, LUA_GCSTEP, 1);
}

void sl_eval_run(sl_engine *engine, const char *name, sl_run *run) {
    invocation call = {engine, name, NULL, run};
    run_protected(engine, &call);
}

void sl_function_run(sl_engine *engine, const char *slot, const char *function, sl_run *run) {
    invocation call = {engine, slot, function, run};
    run_protected(engine, &call);
}

// MARK: Compiling and loading

typedef struct compilation {
    const char *name;
    const char *code;
    size_t length;
    sl_buffer *error;
    sl_engine *engine;
    sl_function *functions;
    int count;
} compilation;

static int compile(lua_State *L) {
    compilation *c = lua_touserdata(L, 1);
    if (luaL_loadbuffer(L, c->code, c->length, "@user_script")) {
        static const char prefix[] = "Error compiling script (new function): ";
        sl_buffer_append(c->error, prefix, sizeof prefix - 1);
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        sl_buffer_append(c->error, text, length);
        return 0;
    }
    lua_setfield(L, LUA_REGISTRYINDEX, c->name);
    return 0;
}

int sl_eval_compile(sl_engine *engine, const char *name, const char *body, size_t length, sl_buffer *error) {
    compilation c = {name, body, length, error, engine, NULL, 0};
    error->length = 0;
    if (lua_cpcall(engine->L, compile, &c)) {
        size_t n;
        const char *text = lua_tolstring(engine->L, -1, &n);
        sl_buffer_append(error, text ? text : "out of memory", text ? n : 13);
        lua_settop(engine->L, 0);
        return 1;
    }
    return error->length > 0;
}

/// The message of a load-time error: a table's `err`, or "ERR " and the text.
static void append_error(lua_State *L, sl_buffer *out) {
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "err");
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        if (text) sl_buffer_append(out, text, length);
        lua_pop(L, 1);
    } else {
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        sl_buffer_append(out, "ERR ", 4);
        if (text) sl_buffer_append(out, text, length);
    }
}

static int load_library(lua_State *L) {
    compilation *c = lua_touserdata(L, 1);
    sl_engine *engine = c->engine;
    if (luaL_loadbuffer(L, c->code, c->length, "@user_function")) {
        static const char prefix[] = "Error compiling function: ";
        sl_buffer_append(c->error, prefix, sizeof prefix - 1);
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        sl_buffer_append(c->error, text, length);
        return 0;
    }
    lua_newtable(L);  // the functions registered, by name, and in order under [i]
    lua_setfield(L, LUA_REGISTRYINDEX, LOADING_KEY);
    lua_getfield(L, LUA_REGISTRYINDEX, LIBRARY_API_KEY);
    lua_setfield(L, LUA_REGISTRYINDEX, API_KEY);
    engine->loading = 1;
    engine->load_deadline = now_ms() + 500;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 100000);
    int status = lua_pcall(L, 0, 0, 0);
    lua_sethook(L, NULL, 0, 0);
    engine->loading = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, GLOBALS_KEY);
    lua_setfield(L, LUA_REGISTRYINDEX, API_KEY);
    if (status) {
        static const char prefix[] = "Error registering functions: ";
        sl_buffer_append(c->error, prefix, sizeof prefix - 1);
        append_error(L, c->error);
        return 0;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, LOADING_KEY);
    int count = (int)lua_objlen(L, -1);
    if (count == 0) {
        static const char none[] = "No functions registered";
        sl_buffer_append(c->error, none, sizeof none - 1);
        return 0;
    }
    lua_newtable(L);  // the library: name -> callback
    c->functions = calloc((size_t)count, sizeof(sl_function));
    if (!c->functions) return luaL_error(L, "out of memory");
    for (int i = 1; i <= count; i++) {
        lua_rawgeti(L, -2, i);  // {name, callback, flags, description}
        lua_rawgeti(L, -1, 1);
        const char *name = lua_tostring(L, -1);
        sl_function *f = &c->functions[c->count++];
        f->name = strdup(name);
        lua_rawgeti(L, -2, 2);
        lua_setfield(L, -4, name);
        lua_pop(L, 1);
        lua_rawgeti(L, -1, 3);
        f->flags = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, -1, 4);
        if (lua_isstring(L, -1)) f->description = strdup(lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, c->name);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LOADING_KEY);
    return 0;
}

int sl_library_load(sl_engine *engine, const char *slot, const char *code, size_t length, sl_function **functions,
                    int *count, sl_buffer *error) {
    compilation c = {slot, code, length, error, engine, NULL, 0};
    error->length = 0;
    int status = lua_cpcall(engine->L, load_library, &c);
    engine->loading = 0;
    if (status) {
        size_t n;
        const char *text = lua_tolstring(engine->L, -1, &n);
        sl_buffer_append(error, text ? text : "out of memory", text ? n : 13);
    }
    lua_settop(engine->L, 0);
    if (status || error->length > 0) {
        sl_functions_free(c.functions, c.count);
        return 1;
    }
    *functions = c.functions;
    *count = c.count;
    return 0;
}

static int forget(lua_State *L) {
    const char *slot = lua_touserdata(L, 1);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, slot);
    return 0;
}

void sl_forget(sl_engine *engine, const char *slot) {
    if (lua_cpcall(engine->L, forget, (void *)slot)) lua_settop(engine->L, 0);
}

void sl_functions_free(sl_function *functions, int count) {
    for (int i = 0; i < count; i++) {
        free(functions[i].name);
        free(functions[i].description);
    }
    free(functions);
}

// MARK: redis.register_function

/// Reads the flags table at the top of the stack into `*flags`; 0 if a flag is unknown.
static int read_flags(lua_State *L, int *flags) {
    static const struct { const char *name; int flag; } known[] = {
        {"no-writes", SL_FLAG_NO_WRITES}, {"allow-oom", SL_FLAG_ALLOW_OOM},
        {"allow-stale", SL_FLAG_ALLOW_STALE}, {"no-cluster", SL_FLAG_NO_CLUSTER},
        {"allow-cross-slot-keys", SL_FLAG_ALLOW_CROSS_SLOT_KEYS}, {NULL, 0}};
    for (int i = 1;; i++) {
        lua_rawgeti(L, -1, i);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return 1;
        }
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        const char *name = lua_tostring(L, -1);
        int found = 0;
        for (int k = 0; known[k].name; k++) {
            if (strcasecmp(name, known[k].name) == 0) {
                *flags |= known[k].flag;
                found = 1;
            }
        }
        lua_pop(L, 1);
        if (!found) return 0;
    }
}

static int raise_error(lua_State *L, const char *message) {
    sl_push_error(L, message, strlen(message));
    return lua_error(L);
}

static int valid_name(const char *name, size_t length) {
    if (length == 0) return 0;
    for (size_t i = 0; i < length; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')) return 0;
    }
    return 1;
}

static int register_function(lua_State *L) {
    sl_engine *engine = sl_engine_of(L);
    if (!engine->loading) return raise_error(L, "redis.register_function can only be called on FUNCTION LOAD command");
    int argc = lua_gettop(L);
    if (argc < 1 || argc > 2) return raise_error(L, "wrong number of arguments to redis.register_function");
    int flags = 0;
    // Normalized to: 3 name, 4 callback, 5 description (nil if none).
    if (argc == 2) {
        if (!lua_isstring(L, 1)) return raise_error(L, "first argument to redis.register_function must be a string");
        if (!lua_isfunction(L, 2)) return raise_error(L, "second argument to redis.register_function must be a function");
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_pushnil(L);
    } else {
        if (!lua_istable(L, 1)) {
            return raise_error(L, "calling redis.register_function with a single argument is only applicable to Lua "
                                  "table (representing named arguments).");
        }
        lua_newtable(L);  // 2: what the named arguments gave
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER) {
                return raise_error(L, "named argument key given to redis.register_function is not a string");
            }
            lua_pushvalue(L, -2);
            const char *key = lua_tostring(L, -1);
            lua_pop(L, 1);
            if (strcasecmp(key, "function_name") == 0) {
                if (!lua_isstring(L, -1)) {
                    return raise_error(L, "function_name argument given to redis.register_function must be a string");
                }
                lua_pushvalue(L, -1);
                lua_setfield(L, 2, "name");
            } else if (strcasecmp(key, "description") == 0) {
                if (!lua_isstring(L, -1)) {
                    return raise_error(L, "description argument given to redis.register_function must be a string");
                }
                lua_pushvalue(L, -1);
                lua_setfield(L, 2, "description");
            } else if (strcasecmp(key, "callback") == 0) {
                if (!lua_isfunction(L, -1)) {
                    return raise_error(L, "callback argument given to redis.register_function must be a function");
                }
                lua_pushvalue(L, -1);
                lua_setfield(L, 2, "callback");
            } else if (strcasecmp(key, "flags") == 0) {
                if (!lua_istable(L, -1)) {
                    return raise_error(L,
                                       "flags argument to redis.register_function must be a table representing function flags");
                }
                if (!read_flags(L, &flags)) return raise_error(L, "unknown flag given");
            } else {
                return raise_error(L, "unknown argument given to redis.register_function");
            }
            lua_pop(L, 1);
        }
        lua_getfield(L, 2, "name");
        lua_getfield(L, 2, "callback");
        lua_getfield(L, 2, "description");
        if (lua_isnil(L, 3)) return raise_error(L, "redis.register_function must get a function name argument");
        if (lua_isnil(L, 4)) return raise_error(L, "redis.register_function must get a callback argument");
    }
    size_t length;
    const char *name = lua_tolstring(L, 3, &length);
    // Redis 7.0 names the library in this message, for a function name.
    if (!valid_name(name, length)) {
        return raise_error(L, "Library names can only contain letters, numbers, or underscores(_) and must be at "
                              "least one character long");
    }
    lua_getfield(L, LUA_REGISTRYINDEX, LOADING_KEY);  // 6
    lua_pushvalue(L, 3);
    lua_rawget(L, 6);
    if (!lua_isnil(L, -1)) return raise_error(L, "Function already exists in the library");
    lua_pop(L, 1);
    lua_createtable(L, 4, 0);  // {name, callback, flags, description}
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 4);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, flags);
    lua_rawseti(L, -2, 3);
    lua_pushvalue(L, 5);
    lua_rawseti(L, -2, 4);
    lua_rawseti(L, 6, (int)lua_objlen(L, 6) + 1);
    lua_pushvalue(L, 3);
    lua_pushboolean(L, 1);
    lua_rawset(L, 6);
    return 0;
}

/// The library API (load time): `redis` with register_function, log and the versions only.
void sl_register_library_api(lua_State *L) {
    lua_newtable(L);  // the load-time globals
    lua_newtable(L);  // its redis
    lua_pushcfunction(L, register_function);
    lua_setfield(L, -2, "register_function");
    lua_getglobal(L, "redis");
    static const char *shared[] = {"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING",
                                   "REDIS_VERSION", "REDIS_VERSION_NUM", NULL};
    for (const char **name = shared; *name; name++) {
        lua_getfield(L, -1, *name);
        lua_setfield(L, -3, *name);
    }
    lua_pop(L, 1);
    make_readonly(L, 1);
    lua_setfield(L, -2, "redis");
    lua_setfield(L, LUA_REGISTRYINDEX, LIBRARY_API_KEY);
}
