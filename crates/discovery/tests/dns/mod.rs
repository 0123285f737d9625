//! A DNS server for tests: answers UDP and TCP queries on a loopback address from a table the
//! test can change at any time, and records what it was asked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// How the server answers one name and type.
#[derive(Clone, Debug)]
pub enum Answer {
    /// NOERROR with these records (owned by the asked name).
    Records(Vec<RData>),
    /// NXDOMAIN (also the answer for anything not in the table).
    NxDomain,
    /// SERVFAIL.
    ServFail,
    /// No answer at all: the client times out.
    Silence,
    /// Over UDP an empty answer with the TC bit; over TCP these records.
    Truncated(Vec<RData>),
}

/// One query the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    /// The name, lower case, with its final dot.
    pub name: String,
    pub record_type: RecordType,
    pub tcp: bool,
    /// Whether the query carried an EDNS0 OPT record.
    pub edns: bool,
}

type Table = Arc<Mutex<HashMap<(String, RecordType), Answer>>>;

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct FakeDns {
    pub addr: SocketAddr,
    table: Table,
    asked: Arc<Mutex<Vec<Asked>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn key(name: &str, t: RecordType) -> (String, RecordType) {
    let mut n = name.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    (n, t)
}

impl FakeDns {
    /// A server on `ip`, on `port` (0: any free port, the same for UDP and TCP).
    pub async fn start(ip: &str, port: u16) -> FakeDns {
        let ip: IpAddr = ip.parse().unwrap();
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind((ip, port)).await.unwrap();
            let bound = udp.local_addr().unwrap();
            match TcpListener::bind(bound).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if port == 0 => eprintln!("TCP port {} taken ({e}), trying another", bound.port()),
                Err(e) => panic!("binding TCP {bound}: {e}"),
            }
        };
        let addr = udp.local_addr().unwrap();
        let table: Table = Arc::default();
        let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
        let udp_task = {
            let (table, asked) = (table.clone(), asked.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                        return;
                    };
                    if let Some(reply) = answer(&buf[..n], false, &table, &asked) {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                }
            })
        };
        let tcp_task = {
            let (table, asked) = (table.clone(), asked.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut conn, _)) = tcp.accept().await else { return };
                    let (table, asked) = (table.clone(), asked.clone());
                    tokio::spawn(async move {
                        loop {
                            let mut len = [0u8; 2];
                            if conn.read_exact(&mut len).await.is_err() {
                                return;
                            }
                            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                            if conn.read_exact(&mut body).await.is_err() {
                                return;
                            }
                            let Some(reply) = answer(&body, true, &table, &asked) else {
                                return;
                            };
                            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&reply);
                            if conn.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            })
        };
        FakeDns {
            addr,
            table,
            asked,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// Sets the answer for `name` (with or without its final dot) and `t`.
    pub fn set(&self, name: &str, t: RecordType, answer: Answer) {
        self.table.lock().unwrap().insert(key(name, t), answer);
    }

    /// The queries received so far.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

/// The encoded reply to `query`, or `None` to stay silent.
fn answer(query: &[u8], tcp: bool, table: &Table, asked: &Mutex<Vec<Asked>>) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let q = query.queries.first()?.clone();
    let qname = q.name().to_ascii();
    asked.lock().unwrap().push(Asked {
        name: qname.to_ascii_lowercase(),
        record_type: q.query_type(),
        tcp,
        edns: query.edns.is_some(),
    });
    let found = table
        .lock()
        .unwrap()
        .get(&key(&qname, q.query_type()))
        .cloned()
        .unwrap_or(Answer::NxDomain);
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    let records = |data: Vec<RData>| -> Vec<Record> {
        let owner: Name = q.name().clone();
        data.into_iter()
            .map(|d| Record::from_rdata(owner.clone(), 60, d))
            .collect()
    };
    match found {
        Answer::Records(data) => {
            reply.add_answers(records(data));
        }
        Answer::NxDomain => reply.metadata.response_code = ResponseCode::NXDomain,
        Answer::ServFail => reply.metadata.response_code = ResponseCode::ServFail,
        Answer::Silence => return None,
        Answer::Truncated(data) if tcp => {
            reply.add_answers(records(data));
        }
        Answer::Truncated(_) => reply.metadata.truncation = true,
    }
    Some(reply.to_vec().unwrap())
}
