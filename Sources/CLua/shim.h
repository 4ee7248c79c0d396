// Lua 5.1, the dialect Redis scripts are written in (liblua5.1-0-dev).
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
