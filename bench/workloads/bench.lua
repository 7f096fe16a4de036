-- bench.lua: the Lua workload of `hc-bench real`. Table operations, string
-- building and matching, closures, a little OO with metatables and
-- inheritance, and garbage collection; prints checksums only (deterministic).
-- Usage: lua bench.lua [SCALE]   (SCALE 1 is a few tens of milliseconds)
local scale = tonumber(arg and arg[1]) or 10

-- Tables: an array filled, sorted with a comparator, shuffled by inserts and
-- removes; a hash table with string keys.
local function tables(n)
  local a = {}
  for i = 1, n do a[i] = (i * 7919) % 100003 end
  table.sort(a, function(x, y) return x > y end)
  for i = 1, 300 do table.insert(a, #a - (i * 31) % 1000, i) end
  for i = 1, 300 do table.remove(a, #a - (i * 17) % 1000) end
  local h = {}
  for i = 1, n do
    local k = "k" .. (a[i] % 5003)
    h[k] = (h[k] or 0) + i
  end
  local sum, keys = 0, 0
  for k, v in pairs(h) do sum = (sum + v * #k) % 1000000007; keys = keys + 1 end
  return sum + keys
end

-- Strings: formatting, concatenation, patterns, substitution, bytes.
local function strings(n)
  local parts = {}
  for i = 1, n do
    parts[#parts + 1] = string.format("%05d:%x:%s", i, i * i % 65536, ("ab"):rep(i % 4 + 1))
  end
  local s = table.concat(parts, ";")
  local count, total = 0, 0
  for num, hex in s:gmatch("(%d+):(%x+)") do
    count = count + 1
    total = (total + tonumber(num) + tonumber(hex, 16)) % 1000000007
  end
  local up, subs = s:sub(1, 20000):gsub("ab", "XY")
  local bytes = 0
  for i = 1, #up, 7 do bytes = bytes + up:byte(i) end
  local found = 0
  local at = 1
  while true do
    local i = s:find("00:", at, true)
    if not i then break end
    found = found + 1
    at = i + 1
  end
  return count + total + subs + bytes + found + #s
end

-- Closures: counters and accumulators, map/filter/reduce over arrays.
local function closures(n)
  local function counter(step)
    local c = 0
    return function() c = c + step; return c end
  end
  local function map(t, f) local r = {} for i = 1, #t do r[i] = f(t[i]) end return r end
  local function filter(t, p)
    local r = {}
    for i = 1, #t do if p(t[i]) then r[#r + 1] = t[i] end end
    return r
  end
  local function reduce(t, f, acc) for i = 1, #t do acc = f(acc, t[i]) end return acc end
  local counters = {}
  for i = 1, 16 do counters[i] = counter(i) end
  local total = 0
  for i = 1, n do total = total + counters[i % 16 + 1]() end
  local xs = {}
  for i = 1, n // 4 do xs[i] = i end
  for round = 1, 8 do
    local ys = map(xs, function(x) return (x * round + 3) % 1009 end)
    local zs = filter(ys, function(y) return y % 3 ~= 0 end)
    total = total + reduce(zs, function(a, b) return (a + b) % 1000003 end, 0)
  end
  return total
end

-- OO: classes with metatables, inheritance, method calls and __index chains.
local Shape = {}
Shape.__index = Shape
function Shape.new(name) return setmetatable({ name = name, moved = 0 }, Shape) end
function Shape:move(dx) self.moved = self.moved + dx end
function Shape:area() return 0 end

local Rect = setmetatable({}, { __index = Shape })
Rect.__index = Rect
function Rect.new(w, h)
  local r = Shape.new("rect")
  r.w, r.h = w, h
  return setmetatable(r, Rect)
end
function Rect:area() return self.w * self.h end

local Circle = setmetatable({}, { __index = Shape })
Circle.__index = Circle
function Circle.new(r)
  local c = Shape.new("circle")
  c.r = r
  return setmetatable(c, Circle)
end
function Circle:area() return 3 * self.r * self.r end

local Vec = {}
Vec.__index = Vec
Vec.__add = function(a, b) return setmetatable({ x = a.x + b.x, y = a.y + b.y }, Vec) end
Vec.__eq = function(a, b) return a.x == b.x and a.y == b.y end
local function vec(x, y) return setmetatable({ x = x, y = y }, Vec) end

local function objects(n)
  local shapes = {}
  for i = 1, n // 2 do
    shapes[i] = (i % 3 == 0) and Circle.new(i % 17) or Rect.new(i % 13, i % 11)
  end
  local area = 0
  for round = 1, 4 do
    for _, s in ipairs(shapes) do
      s:move(round)
      area = area + s:area()
    end
  end
  local v = vec(0, 0)
  for i = 1, n do v = v + vec(i % 7, i % 5) end
  return area + v.x + v.y + (v == vec(v.x, v.y) and 1 or 0)
end

-- GC: many short-lived tables and strings, a long-lived ring that churns,
-- full collections between phases.
local function garbage(n)
  local ring, live = {}, 0
  for i = 1, n * 2 do
    local t = { id = i, tag = "t" .. (i % 97), data = { i, i + 1, i + 2 } }
    ring[i % 512 + 1] = t
    if i % 1000 == 0 then collectgarbage("step", 0) end
  end
  collectgarbage()
  for _, t in pairs(ring) do live = live + t.id % 7 + #t.tag + t.data[3] % 5 end
  local weak = setmetatable({}, { __mode = "v" })
  for i = 1, 1000 do weak[i] = { i } end
  collectgarbage()
  local kept = 0
  for _ in pairs(weak) do kept = kept + 1 end
  return live + kept
end

local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end

local n = 5000 * scale
print("tables", tables(n))
print("strings", strings(n // 2))
print("closures", closures(n))
print("objects", objects(n))
print("garbage", garbage(n))
print("fib", fib(20 + math.floor(math.log(scale, 2) + 0.5)))
