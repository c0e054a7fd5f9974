//! The XPath subset of `XML:/...` targets, evaluated over an [`XmlDoc`].

use super::parser::{is_name_char, is_name_start};
use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
}

#[derive(Clone, PartialEq, Eq)]
enum Test {
    Element(Option<Vec<u8>>),
    Attribute(Option<Vec<u8>>),
    Text,
}

impl XmlDoc {
    /// The root element's text content (`XML:/*`), if there is a root.
    pub fn root_content(&self) -> Option<&[u8]> {
        self.text.first().map(|v| v.as_slice())
    }

    pub(super) fn content(&self) -> &[u8] {
        self.text.first().map(|v| v.as_slice()).unwrap_or(b"")
    }

    /// Values of the text and CDATA nodes, in document order.
    pub fn text_node_values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let c = self.content();
        self.text_nodes
            .iter()
            .map(move |&(_, s, e)| c.get(s..e).unwrap_or(b""))
    }

    /// Evaluates a simple XPath: absolute location paths made of `/` and
    /// `//` steps whose node test is a name (as written, prefixes compared
    /// literally), `*`, `@name`, `@*` or `text()` (attribute and `text()`
    /// steps last), plus `/`. Elements evaluate to their text content.
    /// Returns `None` for anything else (predicates, functions, other axes).
    pub fn eval_xpath(&self, expr: &str) -> Option<Vec<&[u8]>> {
        let steps = parse_xpath(expr.trim())?;
        let c = self.content();
        let elem_val = |e: &XmlElement| c.get(e.text_start..e.text_end).unwrap_or(b"");
        if steps.is_empty() {
            return Some(if self.elements.is_empty() {
                Vec::new()
            } else {
                vec![c]
            });
        }
        let n = self.elements.len();
        // Context: the document node plus a set of elements.
        let mut doc_ctx = true;
        let mut ctx = vec![false; n];
        for (k, (axis, test)) in steps.iter().enumerate() {
            let last = k + 1 == steps.len();
            // in_scope[e]: e is a child (Child) or descendant (Descendant) of
            // a context node.
            let mut in_scope = vec![false; n];
            let mut below = vec![false; n];
            for (i, e) in self.elements.iter().enumerate() {
                let parent_ctx = match e.parent {
                    None => doc_ctx,
                    Some(p) => ctx.get(p).copied().unwrap_or(false),
                };
                let parent_below = e
                    .parent
                    .and_then(|p| below.get(p).copied())
                    .unwrap_or(false);
                below[i] = parent_ctx || parent_below;
                in_scope[i] = match axis {
                    Axis::Child => parent_ctx,
                    Axis::Descendant => below[i],
                };
            }
            match test {
                Test::Element(name) => {
                    let next: Vec<bool> = self
                        .elements
                        .iter()
                        .enumerate()
                        .map(|(i, e)| in_scope[i] && name.as_ref().is_none_or(|nm| *nm == e.name))
                        .collect();
                    ctx = next;
                    doc_ctx = false;
                }
                Test::Attribute(_) | Test::Text if !last => return None,
                Test::Attribute(name) => {
                    let owner_ok = |el: usize| match axis {
                        Axis::Child => ctx.get(el).copied().unwrap_or(false),
                        Axis::Descendant => {
                            doc_ctx
                                || ctx.get(el).copied().unwrap_or(false)
                                || below.get(el).copied().unwrap_or(false)
                        }
                    };
                    return Some(
                        self.attribute_names
                            .iter()
                            .zip(&self.attributes)
                            .filter(|((el, an), _)| {
                                owner_ok(*el) && name.as_ref().is_none_or(|nm| nm == an)
                            })
                            .map(|(_, v)| v.as_slice())
                            .collect(),
                    );
                }
                Test::Text => {
                    let owner_ok = |el: usize| match axis {
                        Axis::Child => ctx.get(el).copied().unwrap_or(false),
                        Axis::Descendant => {
                            doc_ctx
                                || ctx.get(el).copied().unwrap_or(false)
                                || below.get(el).copied().unwrap_or(false)
                        }
                    };
                    return Some(
                        self.text_nodes
                            .iter()
                            .filter(|(el, _, _)| owner_ok(*el))
                            .map(|&(_, s, e)| c.get(s..e).unwrap_or(b""))
                            .collect(),
                    );
                }
            }
        }
        Some(
            self.elements
                .iter()
                .enumerate()
                .filter(|(i, _)| ctx[*i])
                .map(|(_, e)| elem_val(e))
                .collect(),
        )
    }
}

fn parse_xpath(expr: &str) -> Option<Vec<(Axis, Test)>> {
    let b = expr.as_bytes();
    if b.first() != Some(&b'/') {
        return None;
    }
    if b == b"/" {
        return Some(Vec::new());
    }
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'/' {
            return None;
        }
        let axis = if b.get(i + 1) == Some(&b'/') {
            i += 2;
            Axis::Descendant
        } else {
            i += 1;
            Axis::Child
        };
        let start = i;
        while i < b.len() && b[i] != b'/' {
            i += 1;
        }
        let step = &b[start..i];
        let test = match step {
            b"*" => Test::Element(None),
            b"@*" => Test::Attribute(None),
            b"text()" => Test::Text,
            _ if step.first() == Some(&b'@')
                && step.len() > 1
                && step[1..].iter().all(|&c| is_name_char(c)) =>
            {
                Test::Attribute(Some(step[1..].to_vec()))
            }
            _ if !step.is_empty()
                && is_name_start(step[0])
                && step.iter().all(|&c| is_name_char(c)) =>
            {
                Test::Element(Some(step.to_vec()))
            }
            _ => return None,
        };
        steps.push((axis, test));
    }
    Some(steps)
}
