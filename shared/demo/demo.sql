-- The demo crypto-trading schema and generated data. Deterministic (setseed), so tests
-- and benchmarks see the same rows on every machine. Dates fall in May-June 2024.
CREATE TABLE IF NOT EXISTS public.users (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    full_name  text NOT NULL,
    phone      text,
    country    text NOT NULL,
    kyc_status text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS public.accounts (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES public.users (id),
    currency   text NOT NULL,
    balance    numeric(36, 8) NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (user_id, currency)
);
CREATE TABLE IF NOT EXISTS public.deposits (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES public.users (id),
    currency       text NOT NULL,
    amount         numeric(36, 8) NOT NULL,
    wallet_address text NOT NULL,
    tx_hash        text NOT NULL,
    status         text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS public.withdrawals (
    id                  bigserial PRIMARY KEY,
    user_id             bigint NOT NULL REFERENCES public.users (id),
    currency            text NOT NULL,
    amount              numeric(36, 8) NOT NULL,
    destination_address text NOT NULL,
    status              text NOT NULL,
    created_at          timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS public.trades (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES public.users (id),
    pair        text NOT NULL,
    side        text NOT NULL CHECK (side IN ('buy', 'sell')),
    price       numeric(36, 8) NOT NULL,
    quantity    numeric(36, 8) NOT NULL,
    fee         numeric(36, 8) NOT NULL,
    executed_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_user_time ON public.trades (user_id, executed_at);
CREATE INDEX IF NOT EXISTS deposits_user ON public.deposits (user_id);
CREATE INDEX IF NOT EXISTS withdrawals_user ON public.withdrawals (user_id);

-- Load the rows only into empty tables, so running this twice changes nothing.
DO $$
DECLARE
    first_names text[] := ARRAY['hana','liam','olga','mateo','aiko','noah','zara','ivan','lea','omar','mina','jonas','sofia','ravi','emma','kenji','nora','diego','yara','felix'];
    last_names  text[] := ARRAY['kim','smith','petrova','garcia','tanaka','muller','khan','ivanov','rossi','haddad','park','berg','silva','patel','martin','sato','novak','lopez','nasser','weber'];
    countries   text[] := ARRAY['JP','KR','SE','DE','GB','US','BR','IN','SG','FR'];
    pairs       text[] := ARRAY['BTC-USDT','ETH-USDT','SOL-USDT','XRP-USDT','ETH-BTC','ADA-USDT'];
    base_price  numeric[] := ARRAY[65000, 3300, 150, 0.5, 0.05, 0.45];
BEGIN
    IF EXISTS (SELECT 1 FROM public.users) THEN
        RETURN;
    END IF;
    PERFORM setseed(0.42);

    INSERT INTO public.users (email, full_name, phone, country, kyc_status, created_at)
    SELECT format('%s.%s%s@pii-mail.test', f, l, CASE WHEN g > 1 THEN g::text ELSE '' END),
           initcap(f) || ' ' || initcap(l),
           '+' || (10 + (random() * 80)::int)::text || lpad((random() * 999999999)::bigint::text, 9, '0'),
           countries[1 + (g % 10)],
           (ARRAY['verified','verified','verified','pending','rejected'])[1 + (g % 5)],
           timestamptz '2024-01-01' + (g * interval '1 hour') + random() * interval '1 hour'
      FROM generate_series(1, 2000) AS g,
           LATERAL (SELECT first_names[1 + (g % 20)] AS f, last_names[1 + ((g / 20) % 20)] AS l) n;

    INSERT INTO public.accounts (user_id, currency, balance, updated_at)
    SELECT u.id, c, round((random() * 50000)::numeric, 8), timestamptz '2024-06-01' + random() * interval '29 days'
      FROM public.users u, unnest(ARRAY['USDT','BTC','ETH']) AS c
     WHERE c = 'USDT' OR (u.id % 3 <> 0);

    INSERT INTO public.deposits (user_id, currency, amount, wallet_address, tx_hash, status, created_at)
    SELECT 1 + (g * 7919) % 2000,
           (ARRAY['BTC','ETH','USDT','SOL'])[1 + g % 4],
           round((random() * 5)::numeric, 8),
           CASE WHEN g % 4 = 0 THEN 'bc1q' ELSE '0x' END || substr(md5('wallet' || g) || md5('w2' || g), 1, 38),
           '0x' || md5('tx' || g) || md5('tx2' || g),
           (ARRAY['confirmed','confirmed','confirmed','pending','failed'])[1 + g % 5],
           timestamptz '2024-05-01' + random() * interval '60 days'
      FROM generate_series(1, 6000) AS g;

    INSERT INTO public.withdrawals (user_id, currency, amount, destination_address, status, created_at)
    SELECT 1 + (g * 104729) % 2000,
           (ARRAY['BTC','ETH','USDT','SOL'])[1 + g % 4],
           round((random() * 3)::numeric, 8),
           -- Every tenth withdrawal goes to the address of a deposit (of another
           -- customer, the same currency): the join the wallet_address hash domain keeps.
           CASE WHEN g % 4 = 0 THEN 'bc1q' ELSE '0x' END
             || CASE WHEN g % 10 = 0 THEN substr(md5('wallet' || g) || md5('w2' || g), 1, 38)
                     ELSE substr(md5('dest' || g) || md5('d2' || g), 1, 38) END,
           (ARRAY['pending','approved','completed','completed','rejected'])[1 + g % 5],
           timestamptz '2024-05-01' + random() * interval '60 days'
      FROM generate_series(1, 4000) AS g;

    INSERT INTO public.trades (user_id, pair, side, price, quantity, fee, executed_at)
    SELECT t.user_id, t.pair, t.side, t.price, t.quantity, round(t.price * t.quantity * 0.001, 8), t.executed_at
      FROM (SELECT 1 + (g * 31337) % 2000 AS user_id,
                   pairs[1 + g % 6] AS pair,
                   CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END AS side,
                   round(base_price[1 + g % 6] * (0.9 + random() * 0.2)::numeric, 8) AS price,
                   round((random() * 100)::numeric, 8) AS quantity,
                   timestamptz '2024-05-01' + random() * interval '61 days' AS executed_at
              FROM generate_series(1, 60000) AS g) t;
    ANALYZE public.users, public.accounts, public.deposits, public.withdrawals, public.trades;
END
$$;
