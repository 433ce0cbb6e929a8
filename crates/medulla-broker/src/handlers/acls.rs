//! CreateAcls, DescribeAcls and DeleteAcls over the authorizer's store, as Kafka's
//! `AclApis`: Alter on the cluster to create or delete, Describe on the cluster to
//! list; SECURITY_DISABLED when no authorizer is configured; INVALID_REQUEST for a
//! binding or filter Kafka would refuse. Every creation and deletion is recorded in the
//! audit trail before it is made.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use medulla_auth::acl::{
    AclBinding, AclBindingFilter, AclError, AclOperation, AclPermissionType, PatternType,
    ResourceType,
};

use crate::authz::Access;
use crate::broker::Broker;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn store_code(e: &AclError) -> i16 {
    match e {
        AclError::Invalid(_) => ResponseError::InvalidRequest.code(),
        AclError::TooMany { .. } => ResponseError::PolicyViolation.code(),
        AclError::Persist { .. } | AclError::Damaged { .. } => {
            ResponseError::KafkaStorageError.code()
        }
    }
}

/// The authorizer, when it is on and the principal may `op` the cluster; else the
/// error code and message every item is answered with.
async fn gate<'b>(
    broker: &'b Broker,
    access: &Access<'_>,
    op: AclOperation,
) -> Result<&'b medulla_auth::acl::Authorizer, (i16, &'static str)> {
    let Some(authorizer) = broker.authorizer() else {
        return Err((
            ResponseError::SecurityDisabled.code(),
            "No Authorizer is configured.",
        ));
    };
    if !access.check_cluster(op).await {
        return Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            "Cluster authorization failed.",
        ));
    }
    Ok(authorizer)
}

/// Answers CreateAcls.
pub async fn create(
    broker: &Broker,
    access: Access<'_>,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let fail_all = |code: i16, message: &str| {
        CreateAclsResponse::default().with_results(
            request
                .creations
                .iter()
                .map(|_| {
                    AclCreationResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(text(message)))
                })
                .collect(),
        )
    };
    let authorizer = match gate(broker, &access, AclOperation::Alter).await {
        Ok(a) => a,
        Err((code, message)) => return fail_all(code, message),
    };
    let mut results: Vec<Option<(i16, String)>> = Vec::with_capacity(request.creations.len());
    let mut valid = Vec::new();
    for c in &request.creations {
        let binding = AclBinding {
            resource_type: ResourceType::from_code(c.resource_type),
            name: c.resource_name.to_string(),
            pattern_type: PatternType::from_code(c.resource_pattern_type),
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: AclOperation::from_code(c.operation),
            permission: AclPermissionType::from_code(c.permission_type),
        };
        if let Err(e) = binding.validate() {
            results.push(Some((ResponseError::InvalidRequest.code(), e)));
            continue;
        }
        if let Err(code) = access
            .record_change(
                AclOperation::Alter,
                binding.resource_type,
                &binding.name,
                &format!("create ACL {binding}"),
            )
            .await
        {
            results.push(Some((code, "audit trail unavailable".to_owned())));
            continue;
        }
        valid.push((results.len(), binding));
        results.push(None);
    }
    if !valid.is_empty() {
        let store = authorizer.store().clone();
        let (indexes, bindings): (Vec<usize>, Vec<AclBinding>) = valid.into_iter().unzip();
        let outcome = tokio::task::spawn_blocking(move || store.create(bindings)).await;
        for (pos, i) in indexes.iter().enumerate() {
            results[*i] = match &outcome {
                Ok(r) => match r.get(pos) {
                    Some(Ok(())) => None,
                    Some(Err(e)) => Some((store_code(e), e.to_string())),
                    None => Some((ResponseError::UnknownServerError.code(), String::new())),
                },
                Err(e) => Some((ResponseError::UnknownServerError.code(), e.to_string())),
            };
        }
    }
    CreateAclsResponse::default().with_results(
        results
            .into_iter()
            .map(|r| match r {
                None => AclCreationResult::default(),
                Some((code, message)) => AclCreationResult::default()
                    .with_error_code(code)
                    .with_error_message(Some(text(&message))),
            })
            .collect(),
    )
}

fn filter_of(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::from_code(resource_type),
        name: name.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.as_ref().map(|s| s.to_string()),
        host: host.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(operation),
        permission: AclPermissionType::from_code(permission),
    }
}

/// Answers DescribeAcls: the matching bindings grouped by resource pattern.
pub async fn describe(
    broker: &Broker,
    access: Access<'_>,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let fail = |code: i16, message: &str| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(text(message)))
    };
    let authorizer = match gate(broker, &access, AclOperation::Describe).await {
        Ok(a) => a,
        Err((code, message)) => return fail(code, message),
    };
    let filter = filter_of(
        request.resource_type_filter,
        &request.resource_name_filter,
        request.pattern_type_filter,
        &request.principal_filter,
        &request.host_filter,
        request.operation,
        request.permission_type,
    );
    if let Err(e) = filter.validate() {
        return fail(ResponseError::InvalidRequest.code(), &e);
    }
    // Sorted by pattern, so bindings of one resource are adjacent.
    let bindings = authorizer.store().describe(&filter);
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut last: Option<(ResourceType, String, PatternType)> = None;
    for b in bindings {
        let key = (b.resource_type, b.name.clone(), b.pattern_type);
        if last.as_ref() != Some(&key) {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(text(&b.name))
                    .with_pattern_type(b.pattern_type.code()),
            );
            last = Some(key);
        }
        if let Some(r) = resources.last_mut() {
            r.acls.push(
                AclDescription::default()
                    .with_principal(text(&b.principal))
                    .with_host(text(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

/// Answers DeleteAcls: per filter, the bindings it removed.
pub async fn delete(
    broker: &Broker,
    access: Access<'_>,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let fail_all = |code: i16, message: &str| {
        DeleteAclsResponse::default().with_filter_results(
            request
                .filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(text(message)))
                })
                .collect(),
        )
    };
    let authorizer = match gate(broker, &access, AclOperation::Alter).await {
        Ok(a) => a,
        Err((code, message)) => return fail_all(code, message),
    };
    let mut results: Vec<Option<(i16, String)>> = Vec::with_capacity(request.filters.len());
    let mut valid = Vec::new();
    for f in &request.filters {
        let filter = filter_of_delete(f);
        if let Err(e) = filter.validate() {
            results.push(Some((ResponseError::InvalidRequest.code(), e)));
            continue;
        }
        if let Err(code) = access
            .record_change(
                AclOperation::Alter,
                filter.resource_type,
                filter.name.as_deref().unwrap_or("*"),
                &format!("delete ACLs matching {filter:?}"),
            )
            .await
        {
            results.push(Some((code, "audit trail unavailable".to_owned())));
            continue;
        }
        valid.push((results.len(), filter));
        results.push(None);
    }
    let mut matched: Vec<Vec<AclBinding>> = vec![Vec::new(); results.len()];
    if !valid.is_empty() {
        let store = authorizer.store().clone();
        let (indexes, filters): (Vec<usize>, Vec<AclBindingFilter>) = valid.into_iter().unzip();
        let outcome = tokio::task::spawn_blocking(move || store.delete(&filters)).await;
        match outcome {
            Ok(Ok(lists)) => {
                for (i, list) in indexes.into_iter().zip(lists) {
                    if let Some(slot) = matched.get_mut(i) {
                        *slot = list;
                    }
                }
            }
            Ok(Err(e)) => {
                for i in indexes {
                    results[i] = Some((store_code(&e), e.to_string()));
                }
            }
            Err(e) => {
                for i in indexes {
                    results[i] = Some((ResponseError::UnknownServerError.code(), e.to_string()));
                }
            }
        }
    }
    DeleteAclsResponse::default().with_filter_results(
        results
            .into_iter()
            .zip(matched)
            .map(|(r, list)| match r {
                Some((code, message)) => DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(Some(text(&message))),
                None => DeleteAclsFilterResult::default().with_matching_acls(
                    list.iter()
                        .map(|b| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(b.resource_type.code())
                                .with_resource_name(text(&b.name))
                                .with_pattern_type(b.pattern_type.code())
                                .with_principal(text(&b.principal))
                                .with_host(text(&b.host))
                                .with_operation(b.operation.code())
                                .with_permission_type(b.permission.code())
                        })
                        .collect(),
                ),
            })
            .collect(),
    )
}

fn filter_of_delete(f: &DeleteAclsFilter) -> AclBindingFilter {
    filter_of(
        f.resource_type_filter,
        &f.resource_name_filter,
        f.pattern_type_filter,
        &f.principal_filter,
        &f.host_filter,
        f.operation,
        f.permission_type,
    )
}
