-- fhirshift's write fence, inside HAProxy (2.6 or later, Lua 5.3): during a cut-over, client writes
-- are held in HAProxy, before any server is chosen, while reads flow. When the fence is lifted a
-- held write continues like any request and is load-balanced to whichever server serves then, so
-- it is applied exactly once, by that server. Neither FHIR server takes part. docs/cutover.md.
--
-- In the HAProxy configuration (tools/haproxy/fhirshift.cfg.in has them):
--
--   global
--       lua-load /path/to/fhirshift_fence.lua
--   frontend fhir_in
--       acl fhirshift_write lua.fhirshift_is_write -m bool
--       http-request track-sc2 str(fhir) table fhirshift_writes if fhirshift_write
--       http-request lua.fhirshift_fence fhir 30 if fhirshift_write
--   backend fhirshift_writes
--       stick-table type string len 64 size 16 store conn_cur
--
-- `fhir` names the fence (the backend the cut-over switches); 30 is the longest hold in seconds,
-- after which the write is answered 503 + Retry-After with an OperationOutcome and not applied.
-- The stick table counts the writes in progress (HAProxy decrements conn_cur when a request's
-- stream ends, however it ends): held ones plus those already sent to a server.
--
-- Runtime API (the stats socket), one line each:
--   fhirshift fence on <name>     hold new writes from now on
--   fhirshift fence off <name>    lift the fence: held writes proceed
--   fhirshift fence show [<name>] name=fhir fenced=1 held=3 in_flight=0 passed=812 held_ms=1520
-- in_flight: writes past the fence and not finished (sent to a server, answer not yet relayed).
-- Every state lives in this process: a reload or restart of HAProxy lifts the fence.

local fence = {}

fence.WRITES_TABLE = "fhirshift_writes"
-- How often a held write looks at the flag again (the release latency).
fence.POLL_MS = 10

-- POST operations that read: `_search` and the read-only operations of FHIR R4 (they may be
-- POSTed for a long parameter list). Anything else a client POSTs, PUTs, PATCHes or DELETEs is a
-- write, including `POST /` (a batch or transaction Bundle). Misreading a read as a write only
-- holds it briefly; misreading a write as a read would let it reach the old server after the
-- fence, so the list is short and exact.
local READ_ONLY_POST = {
  ["_search"] = true,
  ["$everything"] = true,
  ["$validate"] = true,
  ["$expand"] = true,
  ["$lookup"] = true,
  ["$validate-code"] = true,
  ["$translate"] = true,
  ["$subsumes"] = true,
  ["$meta"] = true,
}
local READ_METHODS = { GET = true, HEAD = true, OPTIONS = true }

-- true when `method path` may change the store. `path` without the query string; a FHIR base
-- below the root (/fhir/Patient/_search) is fine: only the last segment counts.
function fence.is_write(method, path)
  method = string.upper(method or "")
  if READ_METHODS[method] then return false end
  if method ~= "POST" then return true end
  local p = (path or ""):gsub("[?#].*$", ""):gsub("/+$", "")
  local last = p:match("([^/]*)$") or ""
  last = last:gsub("%%24", "$")
  return not READ_ONLY_POST[last]
end

-- Per fence name: fenced flag, since when (ms), writes held now, writes let through since start.
local state = {}

local function now_ms()
  local t = core.now()
  return t.sec * 1000 + t.usec // 1000
end

local function entry(name)
  local s = state[name]
  if not s then
    s = { fenced = false, since = 0, held = 0, passed = 0 }
    state[name] = s
  end
  return s
end

local function outcome(diagnostics)
  return '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient",'
    .. '"diagnostics":"' .. diagnostics .. '"}]}'
end

-- The http-request action: waits while the fence `name` is up, at most `max_hold_s` seconds.
function fence.hold(txn, name, max_hold_s)
  local s = entry(name)
  if not s.fenced then
    s.passed = s.passed + 1
    return
  end
  local limit = (tonumber(max_hold_s) or 30) * 1000
  local start = now_ms()
  s.held = s.held + 1
  while s.fenced do
    if now_ms() - start >= limit then
      s.held = s.held - 1
      local reply = txn:reply({
        status = 503,
        headers = {
          ["content-type"] = { "application/fhir+json" },
          ["retry-after"] = { "1" },
        },
        body = outcome("the write was held by the cut-over's fence (" .. name .. ") for "
          .. tostring(limit // 1000) .. " s, the longest allowed, and was not applied: retry it"),
      })
      txn:done(reply)
      return
    end
    core.msleep(fence.POLL_MS)
  end
  s.held = s.held - 1
  s.passed = s.passed + 1
end

-- conn_cur of the stick-table entry `name`: writes past the classification and not finished.
local function writes_in_progress(name)
  local be = core.backends[fence.WRITES_TABLE]
  if not be or not be.stktable then return nil end
  local e = be.stktable:lookup(name)
  if not e then return 0 end
  return e.conn_cur or 0
end

local function show_line(name, s)
  local in_progress = writes_in_progress(name)
  local in_flight
  if in_progress == nil then
    in_flight = "unknown(no stick table " .. fence.WRITES_TABLE .. " with conn_cur)"
  else
    -- Held writes are tracked too (tracking comes first). Read under the Lua lock, `held` cannot
    -- change meanwhile, so a write counted here was tracked before; a write arriving during the
    -- lookup can only make the figure larger, never hide one in flight.
    in_flight = tostring(math.max(0, in_progress - s.held))
  end
  local held_ms = s.fenced and (now_ms() - s.since) or 0
  return string.format("name=%s fenced=%d held=%d in_flight=%s passed=%d held_ms=%d\n", name,
    s.fenced and 1 or 0, s.held, in_flight, s.passed, held_ms)
end

local function valid_name(name)
  return name ~= nil and name:match("^[%w_.:-]+$") ~= nil
end

local function cli(applet, _, _, verb, name)
  if verb == "show" then
    if name then
      if not valid_name(name) then
        applet:send("Invalid fence name '" .. name .. "'\n")
        return
      end
      applet:send(show_line(name, entry(name)))
    else
      for n, s in pairs(state) do applet:send(show_line(n, s)) end
    end
    return
  end
  if (verb ~= "on" and verb ~= "off") or not valid_name(name) then
    applet:send("Invalid: usage: fhirshift fence on|off <name>, fhirshift fence show [<name>]\n")
    return
  end
  local s = entry(name)
  if verb == "on" then
    if not s.fenced then
      s.fenced = true
      s.since = now_ms()
    end
  else
    s.fenced = false
  end
  applet:send(show_line(name, s))
end

-- Inside HAProxy `core` exists; a plain Lua interpreter (the unit test) only loads the functions.
if core and core.register_action then
  core.register_fetches("fhirshift_is_write", function(txn)
    return fence.is_write(txn.f:method(), txn.f:path())
  end)
  core.register_action("fhirshift_fence", { "http-req" }, fence.hold, 2)
  core.register_cli({ "fhirshift", "fence" },
    "fhirshift fence on|off <name> | show [<name>] : cut-over write fence (fhirshift)", cli)
end

return fence
