use super::*;
use proptest::prelude::*;

fn data() -> Value {
    serde_json::from_str::<Value>(
        r#"{"Id":"abc123","Name":"/web","State":{"Status":"running","Running":true,"Pid":42,"ExitCode":0},
            "Config":{"Env":["A=1","B=2"],"Labels":{"b":"2","a":"1"},"Cmd":null,"Memory":67108864},
            "Mounts":[],"Ratio":1.5,"Big":67108864.0,"Empty":""}"#,
    )
    .unwrap()
}

fn r(t: &str) -> String {
    Template::parse(t).unwrap().render(&data()).unwrap()
}

fn perr(t: &str) -> String {
    Template::parse(t).unwrap_err().to_string()
}

#[test]
fn fields_and_nested_paths() {
    assert_eq!(r("{{.Id}}"), "abc123");
    assert_eq!(r("{{.State.Status}} {{.State.Pid}}"), "running 42");
    assert_eq!(r("{{.Config.Memory}}"), "67108864");
    assert_eq!(r("{{.Big}}"), "6.7108864e+07");
    assert_eq!(r("{{.Ratio}}"), "1.5");
    assert_eq!(r("{{.Nope}}"), "<no value>");
    assert_eq!(r("{{.Config.Cmd}}"), "<nil>");
    assert_eq!(r("{{.Config.Env}}"), "[A=1 B=2]");
    assert_eq!(r("{{.Config.Labels}}"), "map[a:1 b:2]");
}

#[test]
fn json_function_keeps_order() {
    assert_eq!(
        r("{{json .State}}"),
        r#"{"Status":"running","Running":true,"Pid":42,"ExitCode":0}"#
    );
    assert_eq!(r("{{json .Config.Env}}"), r#"["A=1","B=2"]"#);
    assert_eq!(r("{{json .Mounts}}"), "[]");
    assert_eq!(r("{{.Config.Env | json}}"), r#"["A=1","B=2"]"#);
}

#[test]
fn range_if_else_with() {
    assert_eq!(r("{{range .Config.Env}}[{{.}}]{{end}}"), "[A=1][B=2]");
    assert_eq!(
        r("{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}"),
        "0=A=1;1=B=2;"
    );
    assert_eq!(
        r("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}} {{end}}"),
        "a:1 b:2 "
    );
    assert_eq!(r("{{range .Mounts}}x{{else}}none{{end}}"), "none");
    assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(
        r("{{if .Empty}}a{{else if .State.Pid}}b{{else}}c{{end}}"),
        "b"
    );
    assert_eq!(r("{{with .State}}{{.Pid}}{{end}}"), "42");
    assert_eq!(r("{{with .Empty}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(r("{{range .Config.Env}}{{$.Id}} {{end}}"), "abc123 abc123 ");
}

#[test]
fn functions() {
    assert_eq!(r("{{join .Config.Env \",\"}}"), "A=1,B=2");
    assert_eq!(
        r("{{upper .State.Status}} {{lower \"AbC\"}} {{title \"hello world\"}}"),
        "RUNNING abc Hello World"
    );
    assert_eq!(r("{{split \"a:b:c\" \":\"}}"), "[a b c]");
    assert_eq!(
        r("{{index .Config.Env 1}} {{index .Config.Labels \"a\"}}"),
        "B=2 1"
    );
    assert_eq!(r("{{len .Config.Env}} {{len .Id}}"), "2 6");
    assert_eq!(r("{{printf \"%s-%d\" .Id .State.Pid}}"), "abc123-42");
    assert_eq!(r("{{truncate .Id 3}}"), "abc");
    assert_eq!(r("{{println .Id}}"), "abc123\n");
    assert_eq!(r("{{pad .Id 1 2}}|"), " abc123  |");
    assert_eq!(
        r("{{eq .State.Status \"running\"}} {{ne 1 2}} {{lt 1 2}} {{ge 2 3}}"),
        "true true true false"
    );
    assert_eq!(
        r("{{and .State.Running .Id}} {{or .Empty \"d\"}} {{not .Empty}}"),
        "abc123 d true"
    );
    assert_eq!(r("{{(index .Config.Env 0) | printf \"%q\"}}"), "\"A=1\"");
    assert_eq!(r("{{truncate .Id 2 | upper}}"), "AB");
}

#[test]
fn variables_and_trim() {
    assert_eq!(r("{{$x := .State.Pid}}{{$x}}"), "42");
    assert_eq!(r("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    assert_eq!(r("a  {{- .Id -}}  b"), "aabc123b");
    assert_eq!(r("{{/* comment */}}x"), "x");
}

#[test]
fn parse_errors_have_gos_wording() {
    assert_eq!(perr("{{.Id"), "template: :1: unclosed action");
    assert_eq!(
        perr("{{nosuch .Id}}"),
        "template: :1: function \"nosuch\" not defined"
    );
    assert_eq!(perr("{{if .Id}}x"), "template: :1: unexpected EOF");
    assert_eq!(perr("{{end}}"), "template: :1: unexpected {{end}}");
    assert_eq!(perr("{{}}"), "template: :1: missing value for command");
    assert_eq!(perr("a\n{{.X"), "template: :2: unclosed action");
}

#[test]
fn exec_errors() {
    let e = Template::parse("{{.Id.Foo}}")
        .unwrap()
        .render(&data())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "template: :1:2: executing \"\" at <.Id.Foo>: can't evaluate field Foo in type string"
    );
    let t = Template::parse("x {{.Nope}}").unwrap();
    assert_eq!(t.render(&data()).unwrap(), "x <no value>");
    assert_eq!(
        t.render_struct(&data(), "*formatter.ContainerContext")
            .unwrap_err()
            .to_string(),
        "template: :1:4: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
    );
    let e = Template::parse("{{index .Config.Env 5}}")
        .unwrap()
        .render(&data())
        .unwrap_err();
    assert!(e.to_string().contains("index out of range"), "{e}");
}

#[test]
fn header_mode_passes_titles_through() {
    let h = Value::map([
        ("ID", Value::str("CONTAINER ID")),
        ("Names", Value::str("NAMES")),
    ]);
    let t = Template::parse("{{upper .ID}}\t{{json .Names}}").unwrap();
    assert_eq!(t.render_header(&h).unwrap(), "CONTAINER ID\tNAMES");
}

proptest! {
    /// Text without delimiters renders as itself.
    #[test]
    fn plain_text_round_trips(s in "[^{}]*") {
        prop_assert_eq!(Template::parse(&s).unwrap().render(&data()).unwrap(), s);
    }

    /// Any string value printed through a field comes back unchanged, and through json it is
    /// valid JSON that decodes to the same string.
    #[test]
    fn strings_print_and_json_round_trip(s in ".*") {
        let d = Value::map([("S", Value::str(s.clone()))]);
        prop_assert_eq!(Template::parse("{{.S}}").unwrap().render(&d).unwrap(), s.clone());
        let j = Template::parse("{{json .S}}").unwrap().render(&d).unwrap();
        prop_assert_eq!(serde_json::from_str::<String>(&j).unwrap(), s);
    }

    /// Parsing never panics on arbitrary input; it either parses or reports a Go-style error.
    #[test]
    fn parse_never_panics(s in "(\\{\\{|\\}\\}|[a-z.$|() \"'`=:,-]|[0-9]){0,40}") {
        match Template::parse(&s) {
            Ok(t) => { let _ = t.render(&data()); }
            Err(e) => prop_assert!(e.to_string().starts_with("template: :"), "{}", e),
        }
    }

    /// Integers print in decimal like Go's %v.
    #[test]
    fn ints_print_decimal(i in any::<i64>()) {
        let d = Value::map([("N", Value::Int(i))]);
        prop_assert_eq!(Template::parse("{{.N}}").unwrap().render(&d).unwrap(), i.to_string());
    }
}

#[test]
fn label_method_on_contexts() {
    let row = Value::map([
        ("Labels", Value::str("a=1,com.x=y")),
        ("Names", Value::str("web")),
    ]);
    let t = Template::parse("{{.Label \"com.x\"}}|{{.Label \"nope\"}}|{{.Names}}").unwrap();
    assert_eq!(t.render(&row).unwrap(), "y||web");
    assert!(
        Template::parse("{{.Names \"x\"}}")
            .unwrap()
            .render(&row)
            .is_err()
    );
}
