// The `redis` table scripts see: call/pcall (through Swift's callback), the reply helpers,
// logging, RESP selection, replication knobs (accepted, no effect) and the version.
#include "Internal.h"
#include <stdio.h>
#include <string.h>

/// Raises Redis' error table for `message`.
static int raise_message(lua_State *L, const char *message) {
    sl_push_error(L, message, strlen(message));
    return lua_error(L);
}

/// redis.call (raise 1) and redis.pcall (raise 0).
static int generic_call(lua_State *L, int raise) {
    sl_engine *engine = sl_engine_of(L);
    if (!engine->run || !engine->run->call) {
        return raise_message(L, "redis.call/pcall can only be called inside a script invocation");
    }
    int argc = lua_gettop(L);
    if (argc == 0) {
        static const char none[] = "Please specify at least one argument for this redis lib call";
        sl_push_error(L, none, sizeof none - 1);
        return raise ? lua_error(L) : 1;
    }
    // Numbers become Redis' %.17g text in place, so every argument is a string on the stack.
    for (int i = 1; i <= argc; i++) {
        int type = lua_type(L, i);
        if (type == LUA_TNUMBER) {
            char text[64];
            int n = snprintf(text, sizeof text, "%.17g", (double)lua_tonumber(L, i));
            lua_pushlstring(L, text, (size_t)n);
            lua_replace(L, i);
        } else if (type != LUA_TSTRING) {
            static const char bad[] = "Lua redis lib command arguments must be strings or integers";
            lua_settop(L, 0);
            sl_push_error(L, bad, sizeof bad - 1);
            return raise ? lua_error(L) : 1;
        }
    }
    const char **argv = lua_newuserdata(L, sizeof(char *) * (size_t)argc);
    size_t *lengths = lua_newuserdata(L, sizeof(size_t) * (size_t)argc);
    for (int i = 0; i < argc; i++) argv[i] = lua_tolstring(L, i + 1, &lengths[i]);
    sl_buffer reply = {0};
    engine->run->call(engine->run->context, argc, argv, lengths, engine->resp, &reply);
    // Keep the reply in a Lua string (collected even if the conversion raises) and free ours.
    lua_pushlstring(L, reply.data ? reply.data : "", reply.length);
    sl_buffer_free(&reply);
    size_t length;
    const char *bytes = lua_tolstring(L, -1, &length);
    const char *p = bytes;
    int is_error = length > 0 && bytes[0] == '-';
    if (!sl_push_resp(L, &p, bytes + length, 1)) {
        return raise_message(L, "Strata gave a malformed reply to a script");
    }
    if (raise && is_error) return lua_error(L);
    return 1;
}

static int redis_call(lua_State *L) { return generic_call(L, 1); }
static int redis_pcall(lua_State *L) { return generic_call(L, 0); }

static int redis_sha1hex(lua_State *L) {
    if (lua_gettop(L) != 1) return raise_message(L, "wrong number of arguments");
    size_t length = 0;
    const char *text = lua_tolstring(L, 1, &length);
    char digest[41];
    sl_sha1hex(digest, text ? text : "", text ? length : 0);
    lua_pushstring(L, digest);
    return 1;
}

static int redis_error_reply(lua_State *L) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
        static const char usage[] = "wrong number or type of arguments";
        sl_push_error(L, usage, sizeof usage - 1);
        return 1;
    }
    size_t length;
    const char *text = lua_tolstring(L, 1, &length);
    if (text[0] == '-') {
        sl_push_error(L, text, strlen(text));
    } else {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addchar(&b, '-');
        luaL_addstring(&b, text);
        luaL_pushresult(&b);
        size_t n;
        const char *dashed = lua_tolstring(L, -1, &n);
        sl_push_error(L, dashed, n);
    }
    return 1;
}

static int redis_status_reply(lua_State *L) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) {
        static const char usage[] = "wrong number or type of arguments";
        sl_push_error(L, usage, sizeof usage - 1);
        return 1;
    }
    lua_newtable(L);
    lua_pushstring(L, "ok");
    lua_pushvalue(L, -3);
    lua_settable(L, -3);
    return 1;
}

static int redis_log(lua_State *L) {
    int argc = lua_gettop(L);
    if (argc < 2) return raise_message(L, "redis.log() requires two arguments or more.");
    if (!lua_isnumber(L, 1)) return raise_message(L, "First argument must be a number (log level).");
    int level = (int)lua_tonumber(L, 1);
    if (level < 0 || level > 3) return raise_message(L, "Invalid debug level.");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int first = 1;
    for (int i = 2; i <= argc; i++) {
        if (!lua_isstring(L, i)) continue;
        if (!first) luaL_addchar(&b, ' ');
        lua_pushvalue(L, i);
        luaL_addvalue(&b);
        first = 0;
    }
    luaL_pushresult(&b);
    sl_engine *engine = sl_engine_of(L);
    if (engine->run && engine->run->log) {
        size_t length;
        const char *text = lua_tolstring(L, -1, &length);
        engine->run->log(engine->run->context, level, text, length);
    }
    return 0;
}

static int redis_setresp(lua_State *L) {
    sl_engine *engine = sl_engine_of(L);
    if (!engine->run) return raise_message(L, "redis.setresp can only be called inside a script invocation");
    if (lua_gettop(L) != 1) return raise_message(L, "redis.setresp() requires one argument.");
    int resp = (int)lua_tonumber(L, 1);
    if (resp != 2 && resp != 3) return raise_message(L, "RESP version must be 2 or 3.");
    engine->resp = resp;
    return 0;
}

static int redis_set_repl(lua_State *L) {
    sl_engine *engine = sl_engine_of(L);
    if (!engine->run) return raise_message(L, "redis.set_repl can only be called inside a script invocation");
    if (lua_gettop(L) != 1) return raise_message(L, "redis.set_repl() requires two arguments.");
    int flags = (int)lua_tonumber(L, -1);
    if ((flags & ~3) != 0) {
        return raise_message(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
    }
    return 0;  // Strata replicates the effects of every write; nothing to select.
}

static int redis_replicate_commands(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

/// redis.breakpoint: false outside the debugger, as in Redis.
static int redis_breakpoint(lua_State *L) {
    lua_pushboolean(L, 0);
    return 1;
}

/// redis.debug: nothing outside the debugger.
static int redis_debug(lua_State *L) {
    (void)L;
    return 0;
}

static void set_number(lua_State *L, const char *name, lua_Number value) {
    lua_pushnumber(L, value);
    lua_setfield(L, -2, name);
}

int sl_register_api(lua_State *L) {
    lua_newtable(L);
    static const luaL_Reg api[] = {
        {"call", redis_call}, {"pcall", redis_pcall}, {"sha1hex", redis_sha1hex},
        {"error_reply", redis_error_reply}, {"status_reply", redis_status_reply}, {"log", redis_log},
        {"setresp", redis_setresp}, {"set_repl", redis_set_repl}, {"replicate_commands", redis_replicate_commands},
        {"breakpoint", redis_breakpoint}, {"debug", redis_debug}, {NULL, NULL}};
    for (const luaL_Reg *entry = api; entry->name; entry++) {
        lua_pushcfunction(L, entry->func);
        lua_setfield(L, -2, entry->name);
    }
    set_number(L, "LOG_DEBUG", 0);
    set_number(L, "LOG_VERBOSE", 1);
    set_number(L, "LOG_NOTICE", 2);
    set_number(L, "LOG_WARNING", 3);
    set_number(L, "REPL_NONE", 0);
    set_number(L, "REPL_AOF", 1);
    set_number(L, "REPL_SLAVE", 2);
    set_number(L, "REPL_REPLICA", 2);
    set_number(L, "REPL_ALL", 3);
    lua_pushstring(L, "7.0.15");
    lua_setfield(L, -2, "REDIS_VERSION");
    set_number(L, "REDIS_VERSION_NUM", 0x07000f);
    lua_setglobal(L, "redis");
    return 0;
}
