use super::*;

fn hit(s: &str) -> Option<&'static str> {
    detect(s).map(|f| f.reason)
}

#[test]
fn catches_whole_statements() {
    for a in [
        "SELECT * FROM all_tables",
        "select * from orders",
        "SELECT owner, table_name FROM all_tables",
        "SELECT table_name FROM information_schema.tables",
        "SELECT CASE WHEN (1=1) THEN 'a' ELSE 'b' END",
        "select case when substr(user,1,1)='a' then pg_sleep(3) else 0 end",
        "SELECT @@version",
        "SELECT version()",
        "SELECT name FROM accounts WHERE id = 1",
        "SELECT u.name FROM app.users u",
        "SELECT count(*) FROM members",
        "/*!50000SELECT*/ * FROM logins",
        "SeLeCt/**/*/**/FrOm/**/staff",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn catches_union_and_stacked_queries() {
    for a in [
        "1 UNION SELECT 1,2,3",
        "-7 union all select null, null, concat(login, 0x3a, pass) from members--",
        "x') UNION SELECT name, 1 FROM catalog #",
        "10; DROP TABLE members--",
        "abc'; DROP TABLE IF EXISTS carts; --",
        "5; DELETE FROM sessions",
        "1; INSERT INTO admins (name, pass) VALUES ('eve', 'pw')",
        "2; UPDATE accounts SET role='admin' WHERE name='eve'",
        "'; EXEC xp_cmdshell 'dir'--",
        "1; WAITFOR DELAY '0:0:5'--",
        "1;SHUTDOWN--",
        "'; DECLARE @q varchar(99); SET @q='x'--",
        "1; SELECT pg_sleep(4)",
        "3; COPY cmd_out FROM PROGRAM 'id'",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn catches_tautologies_in_string_context() {
    for a in [
        "' OR 'a'='a",
        "zz' or 'x'='x",
        "' OR 1=1--",
        "\" or \"\"=\"",
        "x' AND 2>1 #",
        "1 OR 1=1",
        "4 AND 3=3--",
        "' OR sleep(5)#",
        "') OR ('k'='k",
        "admin'--",
        "nobody' or 'q' like 'q",
        "' or user=user--",
    ] {
        assert!(hit(a).is_some(), "missed {a:?}");
    }
}

#[test]
fn reasons() {
    assert_eq!(hit("' OR 'a'='a"), Some("tautology after a break"));
    assert_eq!(hit("1; DROP TABLE t"), Some("statement stacked after ;"));
    assert_eq!(hit("0 UNION SELECT 1,2"), Some("UNION SELECT"));
    assert_eq!(hit("SELECT * FROM t"), Some("SELECT statement"));
}

#[test]
fn prose_and_look_alikes_pass() {
    for b in [
        "",
        "select the best from our range",
        "Select the best from our range of wines and order by phone",
        "Please select one from the list",
        "select all from the menu",
        "select 2 from the menu",
        "union select committee",
        "drop table mountain",
        "Meet me at noon; drop table reservations if needed",
        "We are done; delete from the list every old item please",
        "Tom's or Jerry's",
        "rock 'n' roll",
        "it's -- well, fine",
        "O'Brien and O'Neil",
        "1 or 2 apples",
        "Update your settings; set up later",
        "I'd like to create a table for 4 people; or two",
        "Case when closed: see the end",
        "#hashtag and more #tags",
        "a -- b -- c",
        "price >= 10 and <= 20",
        "{\"select\": \"from\", \"where\": 1}",
        "SELECT your plan from the options below, then click next",
        "Were you selected? Union members from 1990 and earlier",
        "1, 2, 3 or more",
        "x = y or z",
        "user@example.com; admin@example.com",
    ] {
        assert_eq!(detect(b), None, "{b:?}");
    }
}

#[test]
fn never_panics_and_stays_bounded() {
    let deep = "(".repeat(10_000) + "select 1";
    let _ = detect(&deep);
    let long = "select a, ".repeat(5_000);
    let _ = detect(&long);
    for s in [
        "'",
        "\"",
        "`",
        "/*!",
        "--",
        "#",
        "@",
        "@@",
        "0x",
        ";",
        "select",
        "case when",
        "'; exec",
        "1 between",
    ] {
        let _ = detect(s);
    }
    let bytes: Vec<u8> = (0..=255u8).collect();
    let _ = detect(&bytes);
}
