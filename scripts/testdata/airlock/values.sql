SELECT * FROM (VALUES
  (1, 12.50::numeric, true, 'plain'::text, NULL::text, ''::text, 'NULL'::text, 'Zürich 東京 ñ'::text, repeat('wide ', 14), E'esc \x1b[31mred\x1b[0m tab\there\r\nnew', E'bidi \u202Eevil\u202C zw\u200Bsp c1 \u009b.', E'back\\slash \\n \\u{41}', '{"k": "v<&>", "n": [1, 2.50]}'::jsonb, 'NaN'::numeric, NULL::int),
  (2, -0.001, false, 'x,y"z', 'a', NULL, 'null', 'ǅ', 'short', E'line1\nline2', '', '', 'null'::jsonb, 'Infinity'::numeric, 42)
) AS t(id, amount, flag, csvish, maybe, empty, nulltext, "unicode ü", wide, controls, invisible, backslashes, doc, nan, n)
