// Redis' conversions between Lua values and RESP: command replies into Lua for redis.call,
// and a script's return value into the client's reply (RESP2 or RESP3).
#include "Internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_buffer_append(sl_buffer *buffer, const void *bytes, size_t length) {
    if (buffer->length + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 64;
        while (capacity < buffer->length + length) capacity *= 2;
        char *data = realloc(buffer->data, capacity);
        if (!data) abort();
        buffer->data = data;
        buffer->capacity = capacity;
    }
    if (length) memcpy(buffer->data + buffer->length, bytes, length);
    buffer->length += length;
}

void sl_buffer_free(sl_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = buffer->capacity = 0;
}

static void put(sl_buffer *out, const char *text) { sl_buffer_append(out, text, strlen(text)); }

/// `prefix` + `bytes` + CRLF, with CR and LF inside `bytes` turned into spaces (Redis does so for
/// status and error lines, which cannot hold them).
static void put_line(sl_buffer *out, const char *prefix, const char *bytes, size_t length) {
    put(out, prefix);
    size_t start = out->length;
    sl_buffer_append(out, bytes, length);
    for (size_t i = start; i < out->length; i++) {
        if (out->data[i] == '\r' || out->data[i] == '\n') out->data[i] = ' ';
    }
    put(out, "\r\n");
}

static void put_header(sl_buffer *out, char type, long long count) {
    char header[32];
    int n = snprintf(header, sizeof header, "%c%lld\r\n", type, count);
    sl_buffer_append(out, header, (size_t)n);
}

static void put_bulk(sl_buffer *out, const char *bytes, size_t length) {
    put_header(out, '$', (long long)length);
    sl_buffer_append(out, bytes, length);
    put(out, "\r\n");
}

static void put_null(sl_buffer *out, int resp) { put(out, resp == 2 ? "$-1\r\n" : "_\r\n"); }

/// Redis 7.0's addReplyDouble: %.17g, a bulk string in RESP2.
static void put_double(sl_buffer *out, double d, int resp) {
    char text[64];
    int n;
    if (isinf(d)) n = snprintf(text, sizeof text, "%s", d > 0 ? "inf" : "-inf");
    else n = snprintf(text, sizeof text, "%.17g", d);
    if (resp == 2) put_bulk(out, text, (size_t)n);
    else put_line(out, ",", text, (size_t)n);
}

/// Pushes t[field] (raw) and returns its type; the caller pops it.
static int raw_field(lua_State *L, int table, const char *field) {
    lua_pushstring(L, field);
    lua_rawget(L, table < 0 ? table - 1 : table);
    return lua_type(L, -1);
}

static void write_table(lua_State *L, sl_buffer *out, int cr, int sr) {
    size_t length;
    const char *text;
    if (raw_field(L, -1, "err") == LUA_TSTRING) {
        text = lua_tolstring(L, -1, &length);
        put_line(out, "-", text, length);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, -1, "ok") == LUA_TSTRING) {
        text = lua_tolstring(L, -1, &length);
        put_line(out, "+", text, length);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, -1, "double") == LUA_TNUMBER) {
        put_double(out, lua_tonumber(L, -1), cr);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, -1, "big_number") == LUA_TSTRING) {
        text = lua_tolstring(L, -1, &length);
        if (cr == 2) {
            // Redis maps CR/LF to spaces first, then sends it as a bulk string.
            sl_buffer mapped = {0};
            put_line(&mapped, "", text, length);
            put_bulk(out, mapped.data, mapped.length - 2);
            sl_buffer_free(&mapped);
        } else {
            put_line(out, "(", text, length);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, -1, "verbatim_string") == LUA_TTABLE) {
        if (raw_field(L, -1, "format") == LUA_TSTRING) {
            size_t format_length;
            const char *format = lua_tolstring(L, -1, &format_length);
            if (raw_field(L, -2, "string") == LUA_TSTRING) {
                text = lua_tolstring(L, -1, &length);
                if (cr == 2) {
                    put_bulk(out, text, length);
                } else {
                    char prefix[4] = {' ', ' ', ' ', ':'};
                    memcpy(prefix, format, format_length < 3 ? format_length : 3);
                    put_header(out, '=', (long long)length + 4);
                    sl_buffer_append(out, prefix, 4);
                    sl_buffer_append(out, text, length);
                    put(out, "\r\n");
                }
                lua_pop(L, 3);
                return;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (raw_field(L, -1, "map") == LUA_TTABLE) {
        long long count = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            count++;
        }
        put_header(out, cr == 2 ? '*' : '%', cr == 2 ? count * 2 : count);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            sl_write_reply(L, out, cr, sr);  // the key
            sl_write_reply(L, out, cr, sr);  // the value
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (raw_field(L, -1, "set") == LUA_TTABLE) {
        long long count = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            count++;
        }
        put_header(out, cr == 2 ? '*' : '~', count);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            sl_write_reply(L, out, cr, sr);
        }
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    // An array: elements 1, 2, ... up to the first nil.
    long long count = 0;
    for (;;) {
        lua_rawgeti(L, -1, (int)(count + 1));
        int missing = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (missing) break;
        count++;
    }
    put_header(out, '*', count);
    for (long long i = 1; i <= count; i++) {
        lua_rawgeti(L, -1, (int)i);
        sl_write_reply(L, out, cr, sr);
    }
}

void sl_write_reply(lua_State *L, sl_buffer *out, int cr, int sr) {
    if (!lua_checkstack(L, 4)) {
        put(out, "-ERR reached lua stack limit\r\n");
        lua_pop(L, 1);
        return;
    }
    size_t length;
    const char *text;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
        text = lua_tolstring(L, -1, &length);
        put_bulk(out, text, length);
        break;
    case LUA_TBOOLEAN:
        if (sr == 2) {
            if (lua_toboolean(L, -1)) put(out, ":1\r\n");
            else put_null(out, cr);
        } else if (cr == 2) {
            put(out, lua_toboolean(L, -1) ? ":1\r\n" : ":0\r\n");
        } else {
            put(out, lua_toboolean(L, -1) ? "#t\r\n" : "#f\r\n");
        }
        break;
    case LUA_TNUMBER: {
        char number[32];
        int n = snprintf(number, sizeof number, ":%lld\r\n", (long long)lua_tonumber(L, -1));
        sl_buffer_append(out, number, (size_t)n);
        break;
    }
    case LUA_TTABLE:
        write_table(L, out, cr, sr);
        break;
    default:
        put_null(out, cr);
    }
    lua_pop(L, 1);
}

void sl_push_error(lua_State *L, const char *text, size_t length) {
    const char *code = "ERR";
    size_t code_length = 3;
    const char *message = text;
    size_t message_length = length;
    if (length > 0 && text[0] == '-') {
        const char *space = memchr(text, ' ', length);
        if (space) {
            code = text + 1;
            code_length = (size_t)(space - text - 1);
            message = space + 1;
            message_length = length - (size_t)(space + 1 - text);
        } else {
            message = text + 1;
            message_length = length - 1;
        }
    }
    // Redis trims CR and LF from both ends of the message.
    while (message_length && (message[0] == '\r' || message[0] == '\n')) {
        message++;
        message_length--;
    }
    while (message_length && (message[message_length - 1] == '\r' || message[message_length - 1] == '\n')) {
        message_length--;
    }
    lua_newtable(L);
    lua_pushstring(L, "err");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, code, code_length);
    luaL_addchar(&b, ' ');
    luaL_addlstring(&b, message, message_length);
    luaL_pushresult(&b);
    lua_settable(L, -3);
}

/// The line at `*p` (without CRLF); advances past it. NULL if there is no CRLF before `end`.
static const char *line(const char **p, const char *end, size_t *length) {
    const char *start = *p;
    for (const char *q = start; q + 1 < end; q++) {
        if (q[0] == '\r' && q[1] == '\n') {
            *length = (size_t)(q - start);
            *p = q + 2;
            return start;
        }
    }
    return NULL;
}

static long long number_of(const char *text, size_t length) {
    char digits[32];
    if (length >= sizeof digits) length = sizeof digits - 1;
    memcpy(digits, text, length);
    digits[length] = '\0';
    return strtoll(digits, NULL, 10);
}

/// Pushes {field=value} where value is the string `text`.
static void push_tagged_string(lua_State *L, const char *field, const char *text, size_t length) {
    lua_newtable(L);
    lua_pushstring(L, field);
    lua_pushlstring(L, text, length);
    lua_settable(L, -3);
}

int sl_push_resp(lua_State *L, const char **p, const char *end, int push) {
    if (*p >= end) return 0;
    if (push && !lua_checkstack(L, 5)) luaL_error(L, "reached lua stack limit");
    char type = **p;
    const char *start = *p;
    (*p)++;
    size_t length;
    const char *text = line(p, end, &length);
    if (!text) return 0;
    switch (type) {
    case '+':
        if (push) push_tagged_string(L, "ok", text, length);
        return 1;
    case '-':
        if (push) {
            sl_push_error(L, start, length + 1);
            lua_pushstring(L, "ignore_error_stats_update");
            lua_pushboolean(L, 1);
            lua_settable(L, -3);
        }
        return 1;
    case ':':
        if (push) lua_pushnumber(L, (lua_Number)number_of(text, length));
        return 1;
    case '_':
        if (push) lua_pushnil(L);
        return 1;
    case '#':
        if (push) lua_pushboolean(L, length > 0 && text[0] == 't');
        return 1;
    case ',': {
        if (push) {
            char digits[64];
            size_t n = length < sizeof digits - 1 ? length : sizeof digits - 1;
            memcpy(digits, text, n);
            digits[n] = '\0';
            lua_newtable(L);
            lua_pushstring(L, "double");
            lua_pushnumber(L, strtod(digits, NULL));
            lua_settable(L, -3);
        }
        return 1;
    }
    case '(':
        if (push) push_tagged_string(L, "big_number", text, length);
        return 1;
    case '$':
    case '=': {
        long long size = number_of(text, length);
        if (size < 0) {
            if (push) lua_pushboolean(L, 0);
            return 1;
        }
        if ((size_t)(end - *p) < (size_t)size + 2) return 0;
        const char *payload = *p;
        *p += size + 2;
        if (!push) return 1;
        if (type == '$') {
            lua_pushlstring(L, payload, (size_t)size);
        } else {
            lua_newtable(L);
            lua_pushstring(L, "verbatim_string");
            lua_newtable(L);
            lua_pushstring(L, "string");
            lua_pushlstring(L, size >= 4 ? payload + 4 : payload, size >= 4 ? (size_t)size - 4 : (size_t)size);
            lua_settable(L, -3);
            lua_pushstring(L, "format");
            lua_pushlstring(L, payload, size >= 3 ? 3 : (size_t)size);
            lua_settable(L, -3);
            lua_settable(L, -3);
        }
        return 1;
    }
    case '*':
    case '>': {
        long long count = number_of(text, length);
        if (count < 0) {
            if (push) lua_pushboolean(L, 0);
            return 1;
        }
        if (push) lua_newtable(L);
        for (long long i = 1; i <= count; i++) {
            if (push) lua_pushnumber(L, (lua_Number)i);
            if (!sl_push_resp(L, p, end, push)) return 0;
            if (push) lua_settable(L, -3);
        }
        return 1;
    }
    case '%':
    case '~': {
        long long count = number_of(text, length);
        if (push) {
            lua_newtable(L);
            lua_pushstring(L, type == '%' ? "map" : "set");
            lua_newtable(L);
        }
        for (long long i = 0; i < count; i++) {
            if (!sl_push_resp(L, p, end, push)) return 0;
            if (type == '%') {
                if (!sl_push_resp(L, p, end, push)) return 0;
            } else if (push) {
                lua_pushboolean(L, 1);
            }
            if (push) lua_settable(L, -3);
        }
        if (push) lua_settable(L, -3);
        return 1;
    }
    case '|': {
        long long count = number_of(text, length);
        for (long long i = 0; i < count * 2; i++) {
            if (!sl_push_resp(L, p, end, 0)) return 0;
        }
        return sl_push_resp(L, p, end, push);
    }
    default:
        return 0;
    }
}
