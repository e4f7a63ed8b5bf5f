-- Kinesis Data Analytics for SQL application code (processor=kda-sql).
--
-- Input: SOURCE_SQL_STREAM_001, the flat CDC records (docs/design.md §3.3) produced
-- by the preprocess Lambda, one row per order or order_item change.
-- Reference table: "products" (productId, productName, productPrice), loaded
-- from reference-data/products.json in S3.
-- Output: ORDER_ITEM_ENRICHED_STREAM, one row per order-item whenever either
-- side changes and the other side arrived within the last 30 minutes.
--
-- Limits of this processor, which the default Go processor does not have:
-- deletes are not propagated (they are filtered out below), so neither is
-- the old row of an update that changed a key (oldOrderId/oldItemId in the
-- input); the join only sees the other side within the 30-minute window;
-- and rows carry no version, so the sink orders them by arrival time.

-- Order changes.
CREATE OR REPLACE STREAM "ORDER_STREAM" (
  "orderId"       INTEGER,
  "orderAmount"   DECIMAL(10, 2),
  "orderStatus"   VARCHAR(32),
  "orderDateTime" TIMESTAMP,
  "shipToName"    VARCHAR(100),
  "shipToAddress" VARCHAR(200),
  "shipToCity"    VARCHAR(100),
  "shipToState"   VARCHAR(32),
  "shipToZip"     VARCHAR(16)
);

CREATE OR REPLACE PUMP "ORDER_PUMP" AS
  INSERT INTO "ORDER_STREAM"
    SELECT STREAM "orderId", "orderAmount", "orderStatus", "orderDateTime",
                  "shipToName", "shipToAddress", "shipToCity", "shipToState", "shipToZip"
    FROM "SOURCE_SQL_STREAM_001"
    WHERE "recordType" = 'order' AND "operation" <> 'delete';

-- Item changes, enriched with the product name from the reference table.
-- LEFT JOIN: an item whose product is not in the catalogue still flows,
-- with a null productName.
CREATE OR REPLACE STREAM "ITEM_STREAM" (
  "orderId"      INTEGER,
  "itemId"       INTEGER,
  "itemAmount"   DECIMAL(10, 2),
  "itemQuantity" INTEGER,
  "itemStatus"   VARCHAR(32),
  "productName"  VARCHAR(200)
);

CREATE OR REPLACE PUMP "ITEM_PUMP" AS
  INSERT INTO "ITEM_STREAM"
    SELECT STREAM i."orderId", i."itemId", i."itemAmount", i."itemQuantity", i."itemStatus",
                  p."productName"
    FROM "SOURCE_SQL_STREAM_001" AS i
    LEFT JOIN "products" AS p ON i."itemId" = p."productId"
    WHERE i."recordType" = 'order_item' AND i."operation" <> 'delete';

-- The join. Both sides are windowed, so a row is emitted when either an
-- order or an item arrives and the other side arrived in the last 30
-- minutes: an item that arrives before its order is emitted with the order.
CREATE OR REPLACE STREAM "ORDER_ITEM_ENRICHED_STREAM" (
  "event_ts"      TIMESTAMP,
  "orderId"       INTEGER,
  "orderAmount"   DECIMAL(10, 2),
  "orderStatus"   VARCHAR(32),
  "orderDateTime" TIMESTAMP,
  "shipToName"    VARCHAR(100),
  "shipToAddress" VARCHAR(200),
  "shipToCity"    VARCHAR(100),
  "shipToState"   VARCHAR(32),
  "shipToZip"     VARCHAR(16),
  "itemId"        INTEGER,
  "itemAmount"    DECIMAL(10, 2),
  "itemQuantity"  INTEGER,
  "itemStatus"    VARCHAR(32),
  "productName"   VARCHAR(200)
);

CREATE OR REPLACE PUMP "ORDER_ITEM_ENRICHED_PUMP" AS
  INSERT INTO "ORDER_ITEM_ENRICHED_STREAM"
    SELECT STREAM ROWTIME, o."orderId", o."orderAmount", o."orderStatus", o."orderDateTime",
                  o."shipToName", o."shipToAddress", o."shipToCity", o."shipToState", o."shipToZip",
                  i."itemId", i."itemAmount", i."itemQuantity", i."itemStatus", i."productName"
    FROM "ORDER_STREAM" OVER (RANGE INTERVAL '30' MINUTE PRECEDING) AS o
    JOIN "ITEM_STREAM" OVER (RANGE INTERVAL '30' MINUTE PRECEDING) AS i
      ON o."orderId" = i."orderId";
