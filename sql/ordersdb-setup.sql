-- Schema of the order service and the DMS replication user (docs/design.md §3.1).
--
-- Safe to run again: every statement is idempotent. Runs on RDS MySQL 8.0/8.4
-- and on plain MySQL or MariaDB (local mode); RDS-only calls are skipped there.
--
-- Before running, set the replication user's password in the session:
--   SET @dms_password = '<from Secrets Manager>';
-- `etl db setup` does this for you. With no password set, or one holding a
-- quote, a backslash or a NUL character, the script stops with an error
-- before changing anything.

-- String literals must mean what they say: with NO_BACKSLASH_ESCAPES in the
-- session's sql_mode a backslash is an ordinary character, and the QUOTE()d
-- password below could end its literal early and inject SQL
-- (https://dev.mysql.com/doc/refman/8.0/en/sql-mode.html#sqlmode_no_backslash_escapes).
-- The session's mode is kept, less that flag, and restored at the end.
SET @etl_saved_sql_mode = @@SESSION.sql_mode;
SET SESSION sql_mode = TRIM(BOTH ',' FROM
  REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','));

-- Stop before changing anything when no password was set, or when it holds
-- a character that could leave its string literal (quotes, backslash, NUL;
-- written as CHAR() so that no literal here depends on the sql_mode).
-- Programs and `mysql < file` stop at the SIGNAL below; the client's SOURCE
-- command goes on after errors, so the session is first made read-only,
-- which makes every later statement that would change something fail
-- instead (DDL and account changes are refused in a read-only transaction:
-- https://dev.mysql.com/doc/refman/8.0/en/set-transaction.html). With a
-- usable password the session is made read-write again, so a second SOURCE
-- after `SET @dms_password` works.
SET @dms_password = NULLIF(@dms_password, '');
SET @dms_password_problem = CASE
  WHEN @dms_password IS NULL THEN 'none'
  WHEN LOCATE(CHAR(39), @dms_password) > 0 OR LOCATE(CHAR(34), @dms_password) > 0
    OR LOCATE(CHAR(92), @dms_password) > 0 OR LOCATE(CHAR(0), @dms_password) > 0 THEN 'unsafe'
  ELSE NULL END;
SET @dms_password_mode = IF(@dms_password_problem IS NULL,
  'SET SESSION TRANSACTION READ WRITE', 'SET SESSION TRANSACTION READ ONLY');
PREPARE dms_password_mode_stmt FROM @dms_password_mode;
EXECUTE dms_password_mode_stmt;
DEALLOCATE PREPARE dms_password_mode_stmt;
SET @dms_password_check = CASE @dms_password_problem
  WHEN 'none' THEN 'SIGNAL SQLSTATE ''45000'' SET MESSAGE_TEXT = ''Set @dms_password before running ordersdb-setup.sql (nothing was changed; the session stays read-only until then)'''
  WHEN 'unsafe' THEN 'SIGNAL SQLSTATE ''45000'' SET MESSAGE_TEXT = ''@dms_password must not contain quotes, backslashes or NUL characters: choose another password (nothing was changed; the session stays read-only until then)'''
  ELSE 'DO 0' END;
PREPARE dms_password_check_stmt FROM @dms_password_check;
EXECUTE dms_password_check_stmt;
DEALLOCATE PREPARE dms_password_check_stmt;

CREATE DATABASE IF NOT EXISTS orders CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- Column names are camelCase because DMS copies them verbatim into the
-- records the stream processor reads.
CREATE TABLE IF NOT EXISTS orders.`order` (
  orderId       INT            NOT NULL,
  orderAmount   DECIMAL(10, 2) NOT NULL,
  orderStatus   VARCHAR(32)    NOT NULL,
  orderDateTime DATETIME(3)    NOT NULL,
  shipToName    VARCHAR(100)   NULL,
  shipToAddress VARCHAR(200)   NULL,
  shipToCity    VARCHAR(100)   NULL,
  shipToState   VARCHAR(32)    NULL,
  shipToZip     VARCHAR(16)    NULL,
  PRIMARY KEY (orderId)
) ENGINE = InnoDB;

-- itemId is the product id in the reference catalogue. The foreign key has
-- no ON DELETE CASCADE on purpose: cascaded deletes are not written to the
-- binlog as row events, so DMS would never see them. Delete items first.
CREATE TABLE IF NOT EXISTS orders.order_item (
  orderId      INT            NOT NULL,
  itemId       INT            NOT NULL,
  itemQuantity INT            NOT NULL,
  itemAmount   DECIMAL(10, 2) NOT NULL,
  itemStatus   VARCHAR(32)    NOT NULL,
  PRIMARY KEY (orderId, itemId),
  CONSTRAINT fk_order_item_order FOREIGN KEY (orderId) REFERENCES orders.`order` (orderId)
) ENGINE = InnoDB;

-- The DMS replication user: binlog access for CDC, SELECT for the full load.
-- CREATE USER takes no variables, hence the prepared statements.
-- MySQL 8.4 turns mysql_native_password off by default, so where the server
-- has caching_sha2_password (MySQL 8.0 and later) dms_user authenticates
-- with it, as DMS 3.6.1 and later support; MariaDB has no such plugin and
-- keeps its default.
SET @dms_user_auth = IF(
  (SELECT COUNT(*) FROM information_schema.PLUGINS
    WHERE PLUGIN_NAME = 'caching_sha2_password' AND PLUGIN_STATUS = 'ACTIVE') > 0,
  'IDENTIFIED WITH caching_sha2_password BY ',
  'IDENTIFIED BY ');
SET @dms_user_sql = CONCAT('CREATE USER IF NOT EXISTS ''dms_user''@''%'' ', @dms_user_auth, QUOTE(@dms_password));
PREPARE dms_user_stmt FROM @dms_user_sql;
EXECUTE dms_user_stmt;
DEALLOCATE PREPARE dms_user_stmt;

-- Keep the password (and plugin) in step when the script runs again.
SET @dms_user_sql = CONCAT('ALTER USER ''dms_user''@''%'' ', @dms_user_auth, QUOTE(@dms_password));
PREPARE dms_user_stmt FROM @dms_user_sql;
EXECUTE dms_user_stmt;
DEALLOCATE PREPARE dms_user_stmt;

GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO 'dms_user'@'%';
GRANT SELECT ON orders.* TO 'dms_user'@'%';

-- RDS purges binlogs as soon as it can unless told otherwise; DMS needs them
-- kept long enough to survive a paused task. The procedure exists only on
-- RDS, so it is called only where it exists.
SET @rds_retention_sql = IF(
  (SELECT COUNT(*) FROM information_schema.ROUTINES
    WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = 'rds_set_configuration') > 0,
  'CALL mysql.rds_set_configuration(''binlog retention hours'', 24)',
  'DO 0');
PREPARE rds_retention_stmt FROM @rds_retention_sql;
EXECUTE rds_retention_stmt;
DEALLOCATE PREPARE rds_retention_stmt;

SET SESSION sql_mode = @etl_saved_sql_mode;
