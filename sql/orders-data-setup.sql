-- Sample orders and items for the walkthrough and `make demo`, followed by
-- the changes an order service makes over an order's life: status updates,
-- a quantity change, a cancelled item and a cancelled order. Every itemId is
-- a productId in reference-data/products.json.
--
-- Apply after ordersdb-setup.sql. Idempotent only on a fresh schema.

INSERT INTO orders.`order`
  (orderId, orderAmount, orderStatus, orderDateTime, shipToName, shipToAddress, shipToCity, shipToState, shipToZip)
VALUES
  (1001,  959.18, 'PLACED', '2026-11-02 09:15:02.120', 'Maria Garcia',   '12 Harbor St',    'Seattle',    'WA', '98101'),
  (1002,  477.64, 'PLACED', '2026-11-02 09:16:45.500', 'James Smith',    '400 Pine Ave',    'Portland',   'OR', '97205'),
  (1003,  123.45, 'PLACED', '2026-11-02 09:20:11.003', 'Wei Chen',       '88 Market St',    'San Jose',   'CA', '95113'),
  (1004, 2310.00, 'PLACED', '2026-11-02 09:21:30.250', 'Aisha Khan',     '7 Lake Shore Dr', 'Chicago',    'IL', '60611'),
  (1005,   64.90, 'PLACED', '2026-11-02 09:25:59.999', 'Lucas Silva',    '31 Elm Rd',       'Austin',     'TX', '78701'),
  (1006,  845.10, 'PLACED', '2026-11-02 09:30:00.000', 'Emma Johnson',   '5 Beacon St',     'Boston',     'MA', '02108'),
  (1007,   19.99, 'PLACED', '2026-11-02 09:31:17.420', 'Noah Williams',  '900 Peachtree St','Atlanta',    'GA', '30309'),
  (1008,  310.75, 'PLACED', '2026-11-02 09:40:03.600', 'Sofia Rossi',    '16 Ocean Dr',     'Miami',      'FL', '33139');

INSERT INTO orders.order_item (orderId, itemId, itemQuantity, itemAmount, itemStatus)
VALUES
  (1001,   1, 2, 945.18, 'PLACED'),
  (1001,   2, 2,  14.00, 'PLACED'),
  (1002,   3, 1, 477.64, 'PLACED'),
  (1003,  17, 3,  60.00, 'PLACED'),
  (1003,  42, 1,  63.45, 'PLACED'),
  (1004, 108, 4, 1200.00, 'PLACED'),
  (1004, 256, 2,  610.00, 'PLACED'),
  (1004, 512, 1,  500.00, 'PLACED'),
  (1005, 640, 1,   64.90, 'PLACED'),
  (1006, 777, 3,  600.00, 'PLACED'),
  (1006, 808, 1,  245.10, 'PLACED'),
  (1007, 999, 1,   19.99, 'PLACED'),
  (1008,  25, 5,  250.00, 'PLACED'),
  (1008,   60, 1,  60.75, 'PLACED');

-- Orders move through their life.
UPDATE orders.`order` SET orderStatus = 'SHIPPED' WHERE orderId IN (1001, 1002);
UPDATE orders.order_item SET itemStatus = 'SHIPPED' WHERE orderId IN (1001, 1002);
UPDATE orders.`order` SET orderStatus = 'DELIVERED' WHERE orderId = 1001;
UPDATE orders.order_item SET itemStatus = 'DELIVERED' WHERE orderId = 1001;

-- The customer of order 1003 buys one more of item 17.
UPDATE orders.order_item SET itemQuantity = 4, itemAmount = 80.00 WHERE orderId = 1003 AND itemId = 17;
UPDATE orders.`order` SET orderAmount = 143.45 WHERE orderId = 1003;

-- One item of order 1004 is cancelled.
DELETE FROM orders.order_item WHERE orderId = 1004 AND itemId = 512;
UPDATE orders.`order` SET orderAmount = 1810.00 WHERE orderId = 1004;

-- Order 1007 is cancelled entirely: items first (no cascading delete).
DELETE FROM orders.order_item WHERE orderId = 1007;
DELETE FROM orders.`order` WHERE orderId = 1007;

-- The shipping address of order 1006 is corrected before it ships.
UPDATE orders.`order` SET shipToAddress = '6 Beacon St' WHERE orderId = 1006;
