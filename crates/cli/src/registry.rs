//! Every binding compiled into this build, registered explicitly (greppable; no linker tricks).

use bindery_core::Registry;

/// The registry of every binding family enabled by cargo features.
pub fn registry() -> Registry {
    #[allow(unused_mut)]
    let mut registry = Registry::new();
    #[cfg(any(
        feature = "binding-aws-s3",
        feature = "binding-aws-sqs",
        feature = "binding-aws-sns",
        feature = "binding-aws-dynamodb",
        feature = "binding-aws-kinesis"
    ))]
    bindery_binding_aws::register(&mut registry);
    #[cfg(feature = "binding-cron")]
    bindery_binding_cron::register(&mut registry);
    #[cfg(feature = "binding-http")]
    bindery_binding_http::register(&mut registry);
    #[cfg(feature = "binding-kafka")]
    bindery_binding_kafka::register(&mut registry);
    #[cfg(feature = "binding-localstorage")]
    bindery_binding_localstorage::register(&mut registry);
    #[cfg(feature = "binding-mqtt")]
    bindery_binding_mqtt::register(&mut registry);
    #[cfg(feature = "binding-rabbitmq")]
    bindery_binding_rabbitmq::register(&mut registry);
    #[cfg(feature = "binding-redis")]
    bindery_binding_redis::register(&mut registry);
    #[cfg(feature = "binding-nats")]
    bindery_binding_nats::register(&mut registry);
    #[cfg(feature = "binding-smtp")]
    bindery_binding_smtp::register(&mut registry);
    #[cfg(feature = "binding-azure")]
    bindery_binding_azure::register(&mut registry);
    #[cfg(feature = "binding-postgres")]
    bindery_binding_postgres::register(&mut registry);
    #[cfg(feature = "binding-mysql")]
    bindery_binding_mysql::register(&mut registry);
    registry
}
