-- Bad input for sluice-milter, driven by miltertest. Every scenario prints
-- "ok NAME" or "FAIL NAME: why"; the shell script then checks the counts
-- through the admin socket (no reservation lost) and that the milter runs.
-- SOCK is "inet:PORT@127.0.0.1" (set by the caller with -D).

local failures = 0
local function check(name, cond, why)
  if cond then
    mt.echo("ok   " .. name)
  else
    mt.echo("FAIL " .. name .. ": " .. (why or ""))
    failures = failures + 1
  end
end

local function open(ip)
  local conn = mt.connect(SOCK, 20, 0.25)
  if conn == nil then error("cannot connect to " .. SOCK) end
  local err = mt.conninfo(conn, "client.example", ip or "192.0.2.7")
  if err ~= nil then error("conninfo: " .. err) end
  return conn
end

local function start(conn, sender, ...)
  assert(mt.helo(conn, "client.example") == nil)
  assert(mt.mailfrom(conn, "<" .. sender .. ">") == nil)
  for _, r in ipairs({...}) do assert(mt.rcptto(conn, "<" .. r .. ">") == nil) end
end

local function scenario(name, f)
  local ok, err = pcall(f)
  if not ok then check(name, false, tostring(err)) end
end

-- 1. Abort in the middle of a body: the reservations go back (the shell
--    checks abort@ has 0 recipients counted).
scenario("abort in the middle of a body", function()
  local conn = open()
  start(conn, "abort@acme.example", "r1@remote.example", "r2@remote.example")
  assert(mt.header(conn, "Subject", "half") == nil)
  assert(mt.eoh(conn) == nil)
  assert(mt.bodystring(conn, "the first half of a bo") == nil)
  assert(mt.abort(conn) == nil)
  -- The connection goes on: a whole message after the abort.
  start(conn, "after@acme.example", "r3@remote.example")
  assert(mt.eoh(conn) == nil)
  assert(mt.bodystring(conn, "a whole message\r\n") == nil)
  assert(mt.eom(conn) == nil)
  check("abort in the middle of a body", mt.getreply(conn) == SMFIR_CONTINUE,
        "reply " .. tostring(mt.getreply(conn)))
  mt.disconnect(conn)
end)

-- 2. End of message without RCPT (and without MAIL).
scenario("end of message without RCPT", function()
  local conn = open()
  assert(mt.helo(conn, "client.example") == nil)
  assert(mt.mailfrom(conn, "<norcpt@acme.example>") == nil)
  assert(mt.eoh(conn) == nil)
  assert(mt.eom(conn) == nil)
  check("end of message without RCPT", mt.getreply(conn) == SMFIR_CONTINUE,
        "reply " .. tostring(mt.getreply(conn)))
  mt.disconnect(conn)
end)

-- 3. Thousands of headers, and over-long header lines.
scenario("thousands of headers", function()
  local conn = open()
  start(conn, "headers@acme.example", "r@remote.example")
  -- (miltertest itself crashes past ~4,900 calls on one connection)
  for i = 1, 3000 do assert(mt.header(conn, "X-Filler-" .. i, "value " .. i) == nil) end
  -- Over the 998 bytes RFC 5322 allows per line (miltertest itself
  -- overflows its stack past ~1 KB; the unit test sends 100 KB values).
  assert(mt.header(conn, "X-Long", string.rep("v", 1010)) == nil)
  assert(mt.header(conn, "X-PHP-Originating-Script", string.rep("s", 1000)) == nil)
  assert(mt.eoh(conn) == nil)
  assert(mt.bodystring(conn, "body\r\n") == nil)
  assert(mt.eom(conn) == nil)
  check("thousands of headers", mt.getreply(conn) == SMFIR_CONTINUE,
        "reply " .. tostring(mt.getreply(conn)))
  mt.disconnect(conn)
end)

-- 4. Binary and truncated MIME.
scenario("binary and truncated MIME", function()
  local conn = open()
  start(conn, "mime@acme.example", "r@remote.example")
  assert(mt.header(conn, "Content-Type", "multipart/alternative; boundary=\"b1\"") == nil)
  assert(mt.eoh(conn) == nil)
  local binary = {}
  -- Every byte but NUL (miltertest sends a body string up to its first NUL).
  for i = 0, 4095 do binary[#binary + 1] = string.char(1 + i % 255) end
  assert(mt.bodystring(conn, "--b1\r\nContent-Type: text/html\r\n" ..
                             "Content-Transfer-Encoding: base64\r\n\r\nPGEgaHJlZj0iaHR0cDovL") == nil)
  assert(mt.bodystring(conn, table.concat(binary)) == nil)
  assert(mt.bodystring(conn, "\r\n--b1\r\nContent-Type: text/plain; charset=\"") == nil)
  assert(mt.eom(conn) == nil)
  check("binary and truncated MIME", mt.getreply(conn) == SMFIR_CONTINUE,
        "reply " .. tostring(mt.getreply(conn)))
  mt.disconnect(conn)
end)

-- 5. No macros at all, an unknown protocol family.
scenario("missing macros", function()
  local conn = mt.connect(SOCK, 20, 0.25)
  assert(conn ~= nil)
  assert(mt.conninfo(conn, "localhost", "unspec") == nil)
  start(conn, "nomacros@acme.example", "r@remote.example")
  assert(mt.eoh(conn) == nil)
  assert(mt.eom(conn) == nil)
  check("missing macros", mt.getreply(conn) == SMFIR_CONTINUE,
        "reply " .. tostring(mt.getreply(conn)))
  mt.disconnect(conn)
end)

-- 6. A client that disconnects (abruptly) at every stage: nothing stays
--    reserved (the shell checks gone@).
local stages = {"connect", "helo", "mail", "rcpt", "header", "eoh", "body"}
for n, stage in ipairs(stages) do
  scenario("disconnect after " .. stage, function()
    local conn = open()
    if n >= 2 then assert(mt.helo(conn, "client.example") == nil) end
    if n >= 3 then assert(mt.mailfrom(conn, "<gone@acme.example>") == nil) end
    if n >= 4 then assert(mt.rcptto(conn, "<r@remote.example>") == nil) end
    if n >= 5 then assert(mt.header(conn, "Subject", "x") == nil) end
    if n >= 6 then assert(mt.eoh(conn) == nil) end
    if n >= 7 then assert(mt.bodystring(conn, "partial") == nil) end
    mt.disconnect(conn, false)
    check("disconnect after " .. stage, true)
  end)
end

-- 7. Over the limit (limit@ may send 1 an hour): the second message's RCPT
--    gets sluice's reply.
scenario("limit at RCPT", function()
  local conn = open()
  start(conn, "limit@acme.example", "r@remote.example")
  assert(mt.eoh(conn) == nil)
  assert(mt.bodystring(conn, "one\r\n") == nil)
  assert(mt.eom(conn) == nil)
  assert(mt.mailfrom(conn, "<limit@acme.example>") == nil)
  assert(mt.rcptto(conn, "<r2@remote.example>") == nil)
  check("limit at RCPT", mt.getreply(conn) == SMFIR_REPLYCODE,
        "reply " .. tostring(mt.getreply(conn)))
  mt.disconnect(conn)
end)

mt.echo(failures .. " lua failure(s)")
if failures > 0 then error("failures") end
