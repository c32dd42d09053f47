//! Counts records and discards them: the sink for measuring the runtime itself.

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkRecord, SinkTask, TaskContext,
    TaskError, async_trait,
};

/// Registry entry.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "null",
    class_names: &[
        "io.ferry.connect.null.NullSinkConnector",
        "NullSinkConnector",
        "NullSink",
        "null",
    ],
    create,
};

fn create(_props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    Ok(Box::new(NullSinkConnector))
}

#[derive(Debug)]
struct NullSinkConnector;

#[async_trait]
impl Connector for NullSinkConnector {
    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        Ok(Box::new(NullSinkTask {
            ctx,
            records: 0,
            bytes: 0,
        }))
    }
}

#[derive(Debug)]
struct NullSinkTask {
    ctx: TaskContext,
    records: u64,
    bytes: u64,
}

#[async_trait]
impl SinkTask for NullSinkTask {
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        self.records += records.len() as u64;
        self.bytes += records.iter().map(|r| r.size() as u64).sum::<u64>();
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), TaskError> {
        tracing::debug!(
            connector = %self.ctx.connector,
            task = self.ctx.task_id,
            records = self.records,
            bytes = self.bytes,
            "Null sink discarded its records."
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use ferry_connector_api::{Offsets, RecordError, TopicPartition, Value};

    use super::*;

    #[derive(Debug)]
    struct NoErrors;
    impl ferry_connector_api::ErrantRecordReporter for NoErrors {
        fn report(&self, _: &SinkRecord, e: &RecordError) -> Result<(), TaskError> {
            Err(TaskError::fatal(e.to_string()))
        }
    }

    #[tokio::test]
    async fn counts_and_commits_everything_consumed() {
        let connector = create(&mut ConnectorProps::new(BTreeMap::new())).unwrap();
        let mut task = connector
            .create_task(TaskContext {
                connector: "bench".into(),
                task_id: 0,
                errant: Arc::new(NoErrors),
                commits: Arc::new(ferry_connector_api::NoCommitRequests),
                producers: Arc::new(ferry_connector_api::NoProducers),
            })
            .unwrap();
        let rec = SinkRecord {
            topic: "t".into(),
            original_topic: None,
            partition: 0,
            offset: 4,
            timestamp: None,
            key: None,
            value: Some(Value::Bytes(bytes::Bytes::from_static(b"abc"))),
            headers: vec![],
        };
        task.put(&[rec]).await.unwrap();
        let consumed: Offsets = [(TopicPartition::new("t", 0), 5)].into_iter().collect();
        assert_eq!(task.pre_commit(&consumed).await.unwrap(), consumed);
    }
}
