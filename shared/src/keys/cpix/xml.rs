//! A small element tree over `quick-xml` events, for reading CPIX documents by local
//! name whatever their namespace prefixes.

use super::{err, CpixError};
use quick_xml::events::Event;

/// One element: its local name, attributes (local names) and text.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) attrs: Vec<(String, String)>,
    pub(super) text: String,
    pub(super) children: Vec<Node>,
}

impl Node {
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn children_named<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Node> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub(super) fn find(&self, path: &[&str]) -> Option<&Node> {
        let (first, rest) = path.split_first()?;
        let child = self.children.iter().find(|c| c.name == *first)?;
        if rest.is_empty() {
            Some(child)
        } else {
            child.find(rest)
        }
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    name.rsplit(':').next().unwrap_or_default().to_owned()
}

/// Parses XML into a tree of [`Node`]s; the root is returned.
pub(super) fn tree(xml: &str) -> Result<Node, CpixError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    let open = |e: &quick_xml::events::BytesStart| -> Result<Node, CpixError> {
        let mut node = Node {
            name: local(e.name().as_ref()),
            ..Node::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| err(format!("bad attribute: {e}")))?;
            let key = local(a.key.as_ref());
            if a.key.as_ref().starts_with(b"xmlns") {
                continue;
            }
            let value = a
                .unescape_value()
                .map_err(|e| err(format!("bad attribute value: {e}")))?;
            node.attrs.push((key, value.into_owned()));
        }
        Ok(node)
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| err(format!("not well-formed XML at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(e) => stack.push(open(&e)?),
            Event::Empty(e) => {
                let node = open(&e)?;
                stack.last_mut().expect("root").children.push(node);
            }
            Event::End(_) => {
                let mut node = stack.pop().expect("open element");
                node.text = node.text.trim().to_owned();
                let parent = stack.last_mut().ok_or_else(|| err("unbalanced end tag"))?;
                parent.children.push(node);
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| err(format!("bad text: {e}")))?;
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| err(format!("bad CDATA: {e}")))?;
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref().ok().flatten() {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| err(format!("bad reference: {e}")))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| err(format!("unknown entity &{name};")))?
                            .to_owned()
                    }
                };
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
        if stack.is_empty() {
            return Err(err("unbalanced end tag"));
        }
    }
    if stack.len() != 1 {
        return Err(err("the document ends inside an element"));
    }
    stack
        .pop()
        .and_then(|document| document.children.into_iter().next())
        .ok_or_else(|| err("empty document"))
}
