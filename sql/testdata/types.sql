-- One row per kind of value the formats must carry: NULLs, quoting, unicode, nesting.
SELECT * FROM (VALUES
  (1, 'plain', 1.5::DOUBLE, 12.30::DECIMAL(6,2), DATE '2024-02-29', TIMESTAMP '2024-02-29 23:59:59.123', true, [1, 2, 3], {'k': 'v', 'n': 1}),
  (2, 'comma, "quote"', -0.25::DOUBLE, -0.05::DECIMAL(6,2), DATE '1970-01-01', TIMESTAMP '1970-01-01 00:00:00', false, [], {'k': 'w', 'n': 2}),
  (3, 'line
break', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, '数据探索 ✓', 1e20::DOUBLE, 0::DECIMAL(6,2), DATE '2026-11-25', TIMESTAMP '2026-11-25 15:00:00', true, [NULL, 5], {'k': NULL, 'n': 3})
) AS t(id, text, dbl, dec, day, ts, flag, list, obj)
ORDER BY id;
